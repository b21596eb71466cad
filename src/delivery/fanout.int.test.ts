/**
 * The fan-out while no subscription is enabled: it moves its checkpoint to the log's head without
 * reading the events, and a subscription created afterwards gets exactly the events after it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventStore, type EventStore } from '../store/index.js';
import { STORE_KINDS } from '../test-support/app.js';
import { openTestDb, type OpenedDb } from '../test-support/db.js';
import { waitUntil } from '../test-support/wait.js';
import { startFanout, type Fanout } from './fanout.js';
import { insertSubscription } from './store.js';
import { appendEvents } from '../test-support/events.js';

describe.each(STORE_KINDS)('delivery fan-out without subscriptions (%s)', (kind) => {
  let opened: OpenedDb;
  let store: EventStore;
  let fanout: Fanout;
  beforeAll(async () => {
    opened = await openTestDb(kind);
    store = createEventStore(opened.db, { onAppended: () => fanout?.poke() });
    fanout = startFanout({ db: opened.db, pollMs: 20 });
  });
  afterAll(async () => {
    await fanout?.stop();
    await store?.drain();
    await opened?.close();
  });

  const append = async (n: number, type: string) =>
    (await appendEvents(store, n, type)).map((e) => e.position);

  const deliveries = async (subscriptionId: string) =>
    (
      await opened.db.query<{ event_position: number }>(
        'SELECT event_position FROM event.webhook_deliveries WHERE subscription_id = $1 ORDER BY event_position',
        [subscriptionId],
      )
    ).rows.map((row) => row.event_position);

  it('follows the head with no subscription, then delivers only what follows a new one', async () => {
    const type = `fanout.${randomUUID()}`;
    // The first read finds events and no subscription; the next ones only look at the head.
    const first = await append(1, type);
    await waitUntil('first event read', () => fanout.stats().checkpoint >= first[0]!);
    const before = await append(50, type);
    await waitUntil('checkpoint at the head', () => fanout.stats().checkpoint >= before.at(-1)!);

    const subscriptionId = `sub_${randomUUID()}`;
    await insertSubscription(
      opened.db,
      {
        subscription_id: subscriptionId,
        subscriber_name: 'fanout test',
        subscriber_type: 'webhook',
        description: null,
        event_types: [type],
        event_sources: null,
        event_categories: null,
        callback_url: 'http://127.0.0.1:9/hook',
        webhook_secret: 'whsec_dGVzdA==',
        enabled: true,
        retry_policy: { max_retries: 0, backoff_seconds: [1] },
      },
      { msgId: `created-${subscriptionId}`, subject: 'event.subscription.created', payload: {} },
    );
    const after = await append(3, type);
    await waitUntil('three deliveries', async () => (await deliveries(subscriptionId)).length >= 3);
    expect(await deliveries(subscriptionId)).toEqual(after);
  });
});
