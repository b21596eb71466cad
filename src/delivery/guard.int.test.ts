/**
 * The SSRF guard at delivery time: a callback URL that was accepted (here: registered while
 * private networks were allowed) but now reaches a loopback address is refused at connection
 * time by an engine that does not allow private networks; the delivery fails for good, saying why,
 * and the endpoint never sees a request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_KINDS, startTestApp, type TestApp } from '../test-support/app.js';
import { uid } from '../test-support/http.js';
import {
  apiOf,
  createEventVia,
  createSubscription,
  listDeliveries,
  type Api,
} from '../test-support/subscriptions.js';
import { waitFor } from '../test-support/wait.js';
import { startReceiver, type WebhookReceiver } from '../test-support/webhook-receiver.js';
import { startDeliveryEngine, type DeliveryEngine } from './engine.js';
import { startFanout, type Fanout } from './fanout.js';

describe.each(STORE_KINDS)('SSRF guard at delivery on %s', (kind) => {
  let t: TestApp;
  let api: Api;
  let receiver: WebhookReceiver;
  let fanout: Fanout;
  let engine: DeliveryEngine;
  beforeAll(async () => {
    // The API allows private networks (so the URL is accepted); the engine does not.
    t = await startTestApp(kind, { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' });
    api = apiOf(t);
    receiver = await startReceiver();
    engine = startDeliveryEngine({
      db: t.db,
      timeoutMs: 2000,
      concurrency: 4,
      perSubscription: 2,
      pollMs: 20,
      leaseMs: 5000,
      disableAfterMs: 0,
      allowPrivateNetworks: false,
      userAgent: 'test',
    });
    fanout = startFanout({ db: t.db, pollMs: 20, onDeliveries: () => engine.poke() });
  });
  afterAll(async () => {
    await fanout?.stop();
    await engine?.stop();
    await receiver?.close();
    await t?.close();
  });

  it('refuses the connection, fails the delivery for good and says why', async () => {
    const type = uid('guard');
    for (const url of [receiver.url, receiver.url.replace('127.0.0.1', 'localhost')]) {
      const sub = await createSubscription(api, url, { event_types: [type] });
      await createEventVia(api, { event_type: type });
      const [failed] = await waitFor('refused', async () => {
        const list = await listDeliveries(api, sub.subscription_id);
        return list.some((d) => d.status === 'failed') ? list : undefined;
      });
      expect(failed).toMatchObject({ status: 'failed', attempts: 1, last_response_status: null });
      expect(failed!.last_error).toMatch(/^refused by the SSRF guard: .*(127\.0\.0\.1|::1|forbidden)/);
    }
    expect(receiver.requests).toEqual([]);
  });
});
