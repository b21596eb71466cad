/** Claims and leases at the SQL level: exclusive claims, expiry and take-over, stale completions refused. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type OpenedDb } from '../test-support/db.js';
import { STORE_KINDS } from '../test-support/app.js';
import { waitUntil } from '../test-support/wait.js';
import { createEventStore, type EventStore } from './index.js';
import { READ_STATUS } from './rows.js';
import {
  claimEvents,
  completeEvents,
  insertProcessor,
  processUnmatchedEvents,
  releaseEvents,
  toggleProcessor,
  type ClaimedEvent,
  type EventCompletion,
} from './processing.js';
import { appendEvents } from '../test-support/events.js';

const done = (event: ClaimedEvent): EventCompletion => ({
  event,
  status: 'processed',
  processors: [],
  error_message: null,
  retry_count: 0,
  retry_after_ms: null,
  results: [],
  message: null,
});

describe.each(STORE_KINDS)('processing claims (%s)', (kind) => {
  let opened: OpenedDb;
  let store: EventStore;
  const processorId = randomUUID();
  beforeAll(async () => {
    opened = await openTestDb(kind);
    store = createEventStore(opened.db);
    // An enabled processor, so that appended events wait for processing (no engine runs here).
    await insertProcessor(opened.db, processorId, {
      processor_name: 'claims',
      processor_type: 'publish',
      enabled: true,
      priority: 0,
      filters: {},
      config: { subject: 'tests.claims' },
    });
  });
  afterAll(async () => {
    await store?.drain();
    await opened?.close();
  });

  const append = async (n: number, type: string) =>
    (await appendEvents(store, n, type)).map((e) => e.event_id);

  const status = async (ids: string[]) =>
    (
      await opened.db.query<{ status: string }>(
        `SELECT ${READ_STATUS} AS status FROM event.events_current AS events WHERE event_id = ANY($1::text[]) ORDER BY position`,
        [ids],
      )
    ).rows.map((r) => r.status);

  it('claims are exclusive, oldest first; an expired claim is taken over and its holder cannot complete', async () => {
    const ids = await append(5, `claims.${randomUUID()}`);
    const firstToken = randomUUID();
    // Long enough to read the statuses on a busy machine (a claim reads as processing while it lives).
    const first = await claimEvents(opened.db, { limit: 3, leaseMs: 1500, token: firstToken });
    expect(first.map((e) => e.event_id)).toEqual(ids.slice(0, 3));
    expect(first.every((e) => e.previous_status === 'pending')).toBe(true);
    // The others are still free; the claimed ones are not offered again while the lease holds.
    const secondToken = randomUUID();
    const second = await claimEvents(opened.db, { limit: 10, leaseMs: 60_000, token: secondToken });
    expect(second.map((e) => e.event_id)).toEqual(ids.slice(3));
    expect(await status(ids)).toEqual(Array(5).fill('processing'));

    // The first lease expires: another run takes those events over.
    const thirdToken = randomUUID();
    let third: ClaimedEvent[] = [];
    await waitUntil('lease expired', async () => {
      third = await claimEvents(opened.db, { limit: 10, leaseMs: 60_000, token: thirdToken });
      return third.length > 0;
    });
    expect(third.map((e) => e.event_id)).toEqual(ids.slice(0, 3));
    expect(third.every((e) => e.previous_status === 'processing')).toBe(true);

    // The first holder's completion is refused: the events belong to the third run now.
    const stale = await completeEvents(opened.db, firstToken, first.map(done), []);
    expect(stale).toEqual({ completed: [], lost: ids.slice(0, 3) });
    const fresh = await completeEvents(opened.db, thirdToken, third.map(done), []);
    expect(fresh.completed).toEqual(ids.slice(0, 3));
    await releaseEvents(opened.db, secondToken, second);
    expect(await status(ids)).toEqual(['processed', 'processed', 'processed', 'pending', 'pending']);
  });

  it('a claimed event, read as one JSON text, is the event a read returns; its text is that event as JSON', async () => {
    const type = `json.${randomUUID()}`;
    const [id] = await append(1, type);
    const token = randomUUID();
    const all = await claimEvents(opened.db, { limit: 1000, leaseMs: 60_000, token });
    const claimed = all.find((e) => e.event_type === type)!;
    try {
      const read = (await store.getEvent(id!))!;
      const { previous_status, ...event } = claimed;
      expect(previous_status).toBe('pending');
      expect(event).toEqual(read);
      expect(event.timestamp).toBeInstanceOf(Date);
      // The text travels with the event but is not one of its fields.
      expect(Object.keys(claimed)).not.toContain('json');
      expect(JSON.parse(claimed.json)).toEqual(JSON.parse(JSON.stringify(read)));
    } finally {
      await releaseEvents(opened.db, token, all);
    }
  });

  it('an event under a live claim reads as processing: get, status filters, counts and statistics', async () => {
    const type = `reads.${randomUUID()}`;
    const ids = await append(3, type);
    const before = await store.statistics({});
    const token = randomUUID();
    const claimed = await claimEvents(opened.db, { limit: 1000, leaseMs: 60_000, token });
    expect(claimed.filter((e) => e.event_type === type)).toHaveLength(3);
    expect((await store.getEvent(ids[0]!))!.status).toBe('processing');

    const page = { limit: 10, offset: 0, includeTotal: true };
    const processing = await store.queryEvents({ event_type: type, status: 'processing' }, page);
    expect(processing.events.map((e) => e.event_id).sort()).toEqual([...ids].sort());
    expect(processing.events.every((e) => e.status === 'processing')).toBe(true);
    expect(processing.total).toBe(3);
    const pending = await store.queryEvents({ event_type: type, status: 'pending' }, page);
    expect(pending.events).toHaveLength(0);
    expect(pending.total).toBe(0);
    const during = await store.statistics({});
    expect(during.processing_events).toBe(before.processing_events + claimed.length);
    expect(during.pending_events).toBe(before.pending_events - claimed.length);
    expect(during.total_events).toBe(before.total_events);

    await releaseEvents(opened.db, token, claimed);
    expect((await store.getEvent(ids[0]!))!.status).toBe('pending');
    expect((await store.queryEvents({ event_type: type, status: 'pending' }, page)).total).toBe(3);
    expect((await store.statistics({})).processing_events).toBe(before.processing_events);
  });

  it('with no processor enabled, due events become processed in one statement and leave the queue', async () => {
    const type = `unmatched.${randomUUID()}`;
    const ids = await append(4, type);
    const token = randomUUID();
    const claimed = await claimEvents(opened.db, { limit: 1000, leaseMs: 60_000, token });
    const held = claimed.filter((e) => e.event_type === type).slice(0, 1);
    await releaseEvents(
      opened.db,
      token,
      claimed.filter((e) => !held.includes(e)),
    );
    const before = await store.statistics({});
    await toggleProcessor(opened.db, processorId, false);
    try {
      // Everything due goes (the one under a live claim stays with its holder).
      let done = 0;
      for (let n = -1; n !== 0; done += n) n = await processUnmatchedEvents(opened.db, 1000);
      expect(await status(ids)).toEqual(['processing', 'processed', 'processed', 'processed']);
      const queued = await opened.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM event.processing_queue AS q JOIN event.events AS e USING (position)
         WHERE e.event_type = $1`,
        [type],
      );
      expect(queued.rows[0]!.n).toBe(1);
      const after = await store.statistics({});
      expect(after.processed_events - before.processed_events).toBe(done);
      expect(before.pending_events - after.pending_events).toBe(done);
    } finally {
      await toggleProcessor(opened.db, processorId, true);
    }
  });
});
