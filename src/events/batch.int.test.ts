import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_KINDS, startTestApp, type TestApp } from '../test-support/app.js';
import {
  createEvent,
  get,
  post,
  queryEvents,
  uid,
  validationPaths,
  type ErrorJson,
  type EventJson,
} from '../test-support/http.js';

const BATCH = '/api/v1/events/batch';

interface PartialResult {
  index: number;
  status: number;
  event?: EventJson;
  error?: ErrorJson;
}
interface PartialResponse {
  results: PartialResult[];
  succeeded: number;
  failed: number;
}

describe.each(STORE_KINDS)('POST /api/v1/events/batch (%s)', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(kind, { BATCH_MAX_EVENTS: '5' });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function countOfUser(userId: string): Promise<number> {
    return (await queryEvents(t, { user_id: userId })).total!;
  }

  async function streamVersion(streamId: string): Promise<number> {
    const res = await get(t, `/api/v1/events/stream/${encodeURIComponent(streamId)}`);
    if (res.statusCode === 404) return 0;
    expect(res.statusCode).toBe(200);
    return res.json<{ version: number }>().version;
  }

  function items(userId: string, n: number, extra: Record<string, unknown> = {}) {
    return Array.from({ length: n }, (_, i) => ({
      event_type: `batch.item${i}`,
      user_id: userId,
      data: { i },
      ...extra,
    }));
  }

  describe('atomic (default)', () => {
    it.each([
      ['a bare array', (events: unknown[]) => events],
      ['{events: [...]}', (events: unknown[]) => ({ events })],
    ])('stores %s and answers 201 with the events in request order', async (_name, wrap) => {
      const userId = uid('user');
      const bodies = items(userId, 5);
      const res = await post(t, BATCH, wrap(bodies));
      expect(res.statusCode, res.body).toBe(201);
      const events = res.json<EventJson[]>();
      expect(events).toHaveLength(5);
      events.forEach((event, i) => {
        expect(event).toMatchObject({
          event_type: `batch.item${i}`,
          user_id: userId,
          data: { i },
          event_source: 'backend',
          event_category: 'user_action',
          status: 'processed',
        });
        if (i > 0) expect(event.position).toBeGreaterThan(events[i - 1]!.position);
      });
      expect(await countOfUser(userId)).toBe(5);
      for (const event of events) {
        const read = await get(t, `/api/v1/events/${event.event_id}`);
        expect(read.json()).toEqual(event);
      }
    });

    it('accepts a batch of one', async () => {
      const userId = uid('user');
      const res = await post(t, BATCH, items(userId, 1));
      expect(res.statusCode).toBe(201);
      expect(res.json<EventJson[]>()).toHaveLength(1);
    });

    it.each([
      ['a bare array', (events: unknown[]) => events],
      ['{events: [...]}', (events: unknown[]) => ({ events })],
    ])('in %s, names every bad index in a 422 and stores nothing', async (_name, wrap) => {
      const userId = uid('user');
      const bodies: Record<string, unknown>[] = items(userId, 5);
      delete bodies[1]!.event_type;
      bodies[3]!.event_source = 'mainframe';
      bodies[3]!.colour = 'red';
      const res = await post(t, BATCH, wrap(bodies));
      const paths = validationPaths(res);
      expect(paths.sort()).toEqual(['body[1].event_type', 'body[3].colour', 'body[3].event_source']);
      expect(await countOfUser(userId)).toBe(0);
    });

    it('names bad indexes found after the schema check (stream fields, NUL characters)', async () => {
      const userId = uid('user');
      const bodies: Record<string, unknown>[] = items(userId, 5);
      bodies[1]!.stream_id = 'order:1';
      bodies[1]!.entity_type = 'invoice';
      bodies[3]!.data = { note: 'a\u0000b' };
      bodies[4]!.expected_version = 'no_stream';
      const paths = validationPaths(await post(t, BATCH, bodies));
      expect(paths.sort()).toEqual(['body[1].stream_id', 'body[3].data.note', 'body[4].expected_version']);
      expect(await countOfUser(userId)).toBe(0);
    });

    it('names every bad index when schema errors and later checks are mixed', async () => {
      const userId = uid('user');
      const bodies: Record<string, unknown>[] = items(userId, 5);
      bodies[1]!.user_id = 42;
      bodies[3]!.data = { note: 'a\u0000b' };
      const paths = validationPaths(await post(t, BATCH, { events: bodies }));
      expect(paths.sort()).toEqual(['body[1].user_id', 'body[3].data.note']);
      expect(await countOfUser(userId)).toBe(0);
    });

    it('a version conflict in item 2 is a 409 and stores nothing', async () => {
      const userId = uid('user');
      const streamId = `cart:${uid('c')}`;
      const res = await post(t, BATCH, [
        { event_type: 'cart.created', user_id: userId, stream_id: streamId, expected_version: 'no_stream' },
        { event_type: 'cart.item_added', user_id: userId, stream_id: streamId, expected_version: 1 },
        { event_type: 'cart.item_added', user_id: userId, stream_id: streamId, expected_version: 1 },
        { event_type: 'cart.checked_out', user_id: userId },
      ]);
      expect(res.statusCode, res.body).toBe(409);
      expect(res.json<ErrorJson>()).toMatchObject({
        code: 'version_conflict',
        stream_id: streamId,
        expected_version: 1,
        actual_version: 2,
      });
      expect(await countOfUser(userId)).toBe(0);
      expect(await streamVersion(streamId)).toBe(0);
    });

    it('a conflict with what is stored is a 409 and stores nothing', async () => {
      const userId = uid('user');
      const streamId = `cart:${uid('c')}`;
      await createEvent(t, { event_type: 'cart.created', stream_id: streamId });
      const res = await post(t, BATCH, [
        { event_type: 'other', user_id: userId },
        { event_type: 'cart.created', user_id: userId, stream_id: streamId, expected_version: 'no_stream' },
      ]);
      expect(res.statusCode).toBe(409);
      expect(res.json<ErrorJson>()).toMatchObject({ code: 'version_conflict', actual_version: 1 });
      expect(await countOfUser(userId)).toBe(0);
      expect(await streamVersion(streamId)).toBe(1);
    });

    it('gives several events of one stream consecutive versions in request order', async () => {
      const a = `acct:${uid('a')}`;
      const b = `acct:${uid('b')}`;
      await createEvent(t, { event_type: 'open', stream_id: a });
      const res = await post(t, BATCH, [
        { event_type: 'x', stream_id: a, expected_version: 1 },
        { event_type: 'x', stream_id: b, expected_version: 'no_stream' },
        { event_type: 'x', stream_id: a, expected_version: 2 },
        { event_type: 'x', entity_type: 'acct', entity_id: b.slice(5), expected_version: 'stream_exists' },
        { event_type: 'x', stream_id: a },
      ]);
      expect(res.statusCode, res.body).toBe(201);
      const events = res.json<EventJson[]>();
      expect(events.map((e) => [e.stream_id, e.stream_version])).toEqual([
        [a, 2],
        [b, 1],
        [a, 3],
        [b, 2],
        [a, 4],
      ]);
      expect(await streamVersion(a)).toBe(4);
      expect(await streamVersion(b)).toBe(2);
    });

    it('an idempotency key used twice in a batch with the same content stores one event', async () => {
      const userId = uid('user');
      const key = uid('key');
      const body = { event_type: 'pay', user_id: userId, idempotency_key: key };
      const res = await post(t, BATCH, [body, { event_type: 'other', user_id: userId }, body]);
      expect(res.statusCode, res.body).toBe(201);
      const events = res.json<EventJson[]>();
      expect(events[2]).toEqual(events[0]);
      expect(await countOfUser(userId)).toBe(2);
    });

    it('an idempotency key used twice in a batch with different content is a 409 and stores nothing', async () => {
      const userId = uid('user');
      const key = uid('key');
      const res = await post(t, BATCH, [
        { event_type: 'pay', user_id: userId, idempotency_key: key },
        { event_type: 'pay', user_id: userId, idempotency_key: key, data: { other: 1 } },
      ]);
      expect(res.statusCode).toBe(409);
      expect(res.json<ErrorJson>()).toMatchObject({ code: 'idempotency_conflict', field: 'idempotency_key' });
      expect(await countOfUser(userId)).toBe(0);
    });

    it('a repeated batch with idempotency keys returns the stored events and stores nothing new', async () => {
      const userId = uid('user');
      const bodies = items(userId, 3).map((b) => ({ ...b, idempotency_key: uid('key') }));
      const first = await post(t, BATCH, bodies);
      expect(first.statusCode).toBe(201);
      const again = await post(t, BATCH, bodies);
      expect(again.statusCode).toBe(201);
      expect(again.json()).toEqual(first.json());
      expect(await countOfUser(userId)).toBe(3);
      // one changed item makes the whole batch a conflict
      const changed = bodies.map((b, i) => (i === 1 ? { ...b, data: { changed: true } } : b));
      const conflict = await post(t, BATCH, changed);
      expect(conflict.statusCode).toBe(409);
      expect(await countOfUser(userId)).toBe(3);
    });

    it('a repeated client event_id with other content is a 409 and stores nothing', async () => {
      const userId = uid('user');
      const eventId = uid('eid');
      await createEvent(t, { event_type: 'a', event_id: eventId, user_id: userId });
      const res = await post(t, BATCH, [
        { event_type: 'b', user_id: userId },
        { event_type: 'changed', event_id: eventId, user_id: userId },
      ]);
      expect(res.statusCode).toBe(409);
      expect(res.json<ErrorJson>()).toMatchObject({ code: 'idempotency_conflict', field: 'event_id' });
      expect(await countOfUser(userId)).toBe(1);
    });

    it('more than BATCH_MAX_EVENTS events is a 422', async () => {
      const userId = uid('user');
      for (const body of [items(userId, 6), { events: items(userId, 6) }]) {
        const paths = validationPaths(await post(t, BATCH, body));
        expect(paths).toEqual(['body']);
      }
      const partial = await post(t, `${BATCH}?partial=true`, items(userId, 6));
      expect(validationPaths(partial)).toEqual(['body']);
      expect(await countOfUser(userId)).toBe(0);
    });

    it.each<[string, unknown]>([
      ['an empty array', []],
      ['an empty {events: []}', { events: [] }],
      ['an object', { event_type: 'x' }],
      ['{events} with another field', { events: [{ event_type: 'x' }], extra: 1 }],
      ['{events: not an array}', { events: { event_type: 'x' } }],
      ['a string', 'x'],
      ['null', null],
    ])('%s is a 422', async (_name, body) => {
      const paths = validationPaths(await post(t, BATCH, body));
      expect(paths.length).toBeGreaterThan(0);
      for (const path of paths) expect(path).toMatch(/^body/);
    });

    it.each([[[]], [{ events: [] }]])('an empty batch with ?partial=true is a 422', async (body) => {
      expect(validationPaths(await post(t, `${BATCH}?partial=true`, body))).toEqual(['body']);
    });

    it('?partial=false is the atomic batch, also when an item is invalid', async () => {
      const userId = uid('user');
      const bodies: Record<string, unknown>[] = items(userId, 3);
      bodies[1]!.event_type = '';
      const paths = validationPaths(await post(t, `${BATCH}?partial=false`, bodies));
      expect(paths).toEqual(['body[1].event_type']);
      expect(await countOfUser(userId)).toBe(0);
      const ok = await post(t, `${BATCH}?partial=false`, items(userId, 2));
      expect(ok.statusCode).toBe(201);
    });

    it('a bad partial parameter is a 422 naming query.partial', async () => {
      const userId = uid('user');
      for (const bodies of [items(userId, 2), [{ event_type: '' }]]) {
        const paths = validationPaths(await post(t, `${BATCH}?partial=maybe`, bodies));
        expect(paths).toContain('query.partial');
      }
      expect(await countOfUser(userId)).toBe(0);
    });
  });

  describe('?partial=true', () => {
    it('answers 207 with per-item results in request order; valid items are stored, invalid not', async () => {
      const userId = uid('user');
      const streamId = `doc:${uid('d')}`;
      await createEvent(t, { event_type: 'doc.created', stream_id: streamId });
      const res = await post(t, `${BATCH}?partial=true`, [
        { event_type: 'ok.first', user_id: userId, data: { i: 0 } },
        { event_type: '', user_id: userId, colour: 'red' },
        { event_type: 'conflict', user_id: userId, stream_id: streamId, expected_version: 'no_stream' },
        { event_type: 'bad.data', user_id: userId, data: { note: 'a\u0000b' } },
        { event_type: 'ok.last', user_id: userId, stream_id: streamId, expected_version: 1 },
      ]);
      expect(res.statusCode, res.body).toBe(207);
      const body = res.json<PartialResponse>();
      expect(body.results.map((r) => [r.index, r.status])).toEqual([
        [0, 201],
        [1, 422],
        [2, 409],
        [3, 422],
        [4, 201],
      ]);
      expect(body.succeeded).toBe(2);
      expect(body.failed).toBe(3);

      const [first, invalid, conflict, badData, last] = body.results;
      expect(first!.event).toMatchObject({ event_type: 'ok.first', user_id: userId, data: { i: 0 } });
      expect(first!.error).toBeUndefined();
      expect(invalid!.event).toBeUndefined();
      expect(invalid!.error!.code).toBe('validation_failed');
      expect(invalid!.error!.errors!.map((e) => e.path).sort()).toEqual([
        'body[1].colour',
        'body[1].event_type',
      ]);
      expect(conflict!.error).toMatchObject({
        code: 'version_conflict',
        stream_id: streamId,
        actual_version: 1,
      });
      expect(badData!.error!.code).toBe('validation_failed');
      expect(badData!.error!.errors!.map((e) => e.path)).toEqual(['body[3].data.note']);
      expect(last!.event).toMatchObject({ event_type: 'ok.last', stream_id: streamId, stream_version: 2 });

      const stored = await queryEvents(t, { user_id: userId });
      expect(stored.total).toBe(2);
      expect(stored.events.map((e) => e.event_type).sort()).toEqual(['ok.first', 'ok.last']);
      for (const result of [first!, last!]) {
        const read = await get(t, `/api/v1/events/${result.event!.event_id}`);
        expect(read.json()).toEqual(result.event);
      }
    });

    it('works with {events: [...]} too', async () => {
      const userId = uid('user');
      const res = await post(t, `${BATCH}?partial=true`, {
        events: [{ event_type: 'a', user_id: userId }, { event_type: 5 }],
      });
      expect(res.statusCode).toBe(207);
      const body = res.json<PartialResponse>();
      expect(body.results.map((r) => r.status)).toEqual([201, 422]);
      expect(body.results[1]!.error!.errors!.map((e) => e.path)).toEqual(['body[1].event_type']);
      expect(await countOfUser(userId)).toBe(1);
    });

    it('answers 207 when every item fails', async () => {
      const res = await post(t, `${BATCH}?partial=true`, [{ event_type: '' }, { nope: 1 }]);
      expect(res.statusCode).toBe(207);
      const body = res.json<PartialResponse>();
      expect(body).toMatchObject({ succeeded: 0, failed: 2 });
      expect(body.results.map((r) => r.status)).toEqual([422, 422]);
    });

    it('gives several events of one stream consecutive versions in request order', async () => {
      const streamId = `seq:${uid('s')}`;
      const res = await post(
        t,
        `${BATCH}?partial=true`,
        Array.from({ length: 5 }, (_, i) => ({ event_type: `step${i}`, stream_id: streamId })),
      );
      expect(res.statusCode).toBe(207);
      const body = res.json<PartialResponse>();
      expect(body.results.map((r) => [r.event!.event_type, r.event!.stream_version])).toEqual([
        ['step0', 1],
        ['step1', 2],
        ['step2', 3],
        ['step3', 4],
        ['step4', 5],
      ]);
      expect(await streamVersion(streamId)).toBe(5);
    });

    it('expected versions within one partial batch see the items before them', async () => {
      const streamId = `seq:${uid('s')}`;
      const res = await post(t, `${BATCH}?partial=true`, [
        { event_type: 'a', stream_id: streamId, expected_version: 'no_stream' },
        { event_type: 'b', stream_id: streamId, expected_version: 1 },
        { event_type: 'c', stream_id: streamId, expected_version: 1 },
        { event_type: 'd', stream_id: streamId, expected_version: 2 },
      ]);
      const body = res.json<PartialResponse>();
      expect(body.results.map((r) => r.status)).toEqual([201, 201, 409, 201]);
      expect(body.results[2]!.error).toMatchObject({ code: 'version_conflict', actual_version: 2 });
      expect(body.results[3]!.event!.stream_version).toBe(3);
    });

    it('reports an idempotent repeat as the stored event', async () => {
      const userId = uid('user');
      const key = uid('key');
      const original = await createEvent(t, { event_type: 'pay', user_id: userId, idempotency_key: key });
      const res = await post(t, `${BATCH}?partial=true`, [
        { event_type: 'pay', user_id: userId, idempotency_key: key },
        { event_type: 'pay', user_id: userId, idempotency_key: key, data: { changed: 1 } },
      ]);
      const body = res.json<PartialResponse>();
      expect(body.results[0]!.status).toBe(200);
      expect(body.results[0]!.event).toEqual(original);
      expect(body.results[1]!.status).toBe(409);
      expect(body.results[1]!.error!.code).toBe('idempotency_conflict');
      expect(await countOfUser(userId)).toBe(1);
    });
  });
});
