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

const CREATE = '/api/v1/events/create';

const EVENT_FIELDS = [
  'event_id',
  'event_type',
  'event_source',
  'event_category',
  'user_id',
  'session_id',
  'organization_id',
  'device_id',
  'correlation_id',
  'data',
  'metadata',
  'context',
  'properties',
  'status',
  'processed_at',
  'processors',
  'error_message',
  'retry_count',
  'timestamp',
  'created_at',
  'updated_at',
  'version',
  'schema_version',
  'position',
  'stream_id',
  'entity_type',
  'entity_id',
  'stream_version',
  'idempotency_key',
].sort();

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

describe.each(STORE_KINDS)('POST /api/v1/events/create (%s)', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(kind);
  });
  afterAll(async () => {
    await t?.close();
  });

  /** How many events of this user are stored. */
  async function countOfUser(userId: string): Promise<number> {
    const page = await queryEvents(t, { user_id: userId });
    return page.total!;
  }

  async function streamVersion(streamId: string): Promise<number> {
    const res = await get(t, `/api/v1/events/stream/${encodeURIComponent(streamId)}`);
    if (res.statusCode === 404) return 0;
    expect(res.statusCode).toBe(200);
    return res.json<{ version: number }>().version;
  }

  describe('success', () => {
    it('answers 201 with every EventResponse field and the defaults', async () => {
      const before = Date.now();
      const res = await post(t, CREATE, { event_type: 'user.registered' });
      const after = Date.now();
      expect(res.statusCode, res.body).toBe(201);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.headers['idempotent-replayed']).toBeUndefined();
      const event = res.json<EventJson>();
      expect(Object.keys(event).sort()).toEqual(EVENT_FIELDS);
      expect(event).toMatchObject({
        event_type: 'user.registered',
        event_source: 'backend',
        event_category: 'user_action',
        // No processor is enabled: nothing to wait for, stored as processed.
        status: 'processed',
        data: {},
        metadata: {},
        context: null,
        properties: null,
        user_id: null,
        session_id: null,
        organization_id: null,
        device_id: null,
        correlation_id: null,
        processors: [],
        error_message: null,
        retry_count: 0,
        version: '1.0.0',
        schema_version: '1.0.0',
        stream_id: null,
        entity_type: null,
        entity_id: null,
        stream_version: null,
        idempotency_key: null,
      });
      expect(event.event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(Number.isSafeInteger(event.position)).toBe(true);
      expect(event.position).toBeGreaterThan(0);
      for (const field of ['timestamp', 'created_at', 'updated_at', 'processed_at'] as const) {
        expect(event[field]).toMatch(ISO);
      }
      const ts = Date.parse(event.timestamp);
      expect(ts).toBeGreaterThanOrEqual(before - 1);
      expect(ts).toBeLessThanOrEqual(after + 1);

      const read = await get(t, `/api/v1/events/${event.event_id}`);
      expect(read.statusCode).toBe(200);
      expect(read.json()).toEqual(event);
    });

    it('stores an event pending while a processor is enabled, processed while none is', async () => {
      const register = await post(t, '/api/v1/events/processors', {
        processor_name: `pending-${kind}`,
        processor_type: 'publish',
        config: { subject: 'tests.pending' },
      });
      expect(register.statusCode, register.body).toBe(201);
      const processorId = register.json<{ processor_id: string }>().processor_id;
      const pending = await post(t, CREATE, { event_type: 'waits.for.processing' });
      expect(pending.json()).toMatchObject({ status: 'pending', processed_at: null });

      const toggle = await t.app.http.inject({
        method: 'PUT',
        url: `/api/v1/events/processors/${processorId}/toggle?enabled=false`,
      });
      expect(toggle.statusCode, toggle.body).toBe(200);
      const processed = await post(t, CREATE, { event_type: 'nothing.to.wait.for' });
      expect(processed.json()).toMatchObject({ status: 'processed', processors: [] });
      expect(processed.json<EventJson>().processed_at).toMatch(ISO);
    });

    it('stores and returns every optional field', async () => {
      const body = {
        event_type: 'order.placed',
        event_source: 'external_api',
        event_category: 'order',
        user_id: uid('user'),
        session_id: uid('session'),
        organization_id: uid('org'),
        device_id: uid('device'),
        correlation_id: uid('corr'),
        data: {
          amount: 12.5,
          items: [{ sku: 'a', qty: 2 }],
          nested: { ok: true, none: null },
          text: 'ünï©ødé 🎉',
        },
        metadata: { ip: '10.0.0.1' },
        context: { locale: 'de-DE' },
        properties: { campaign: 'x' },
        timestamp: '2024-03-05T10:11:12.345Z',
      };
      const event = await createEvent(t, body);
      expect(event).toMatchObject(body);
      const read = await get(t, `/api/v1/events/${event.event_id}`);
      expect(read.json()).toEqual(event);
    });

    it('accepts explicit nulls for nullable fields', async () => {
      const event = await createEvent(t, {
        event_type: 'nulls',
        user_id: null,
        session_id: null,
        metadata: null,
        context: null,
        properties: null,
      });
      expect(event).toMatchObject({ user_id: null, session_id: null, metadata: {}, context: null });
    });

    it('gives increasing positions in insert order', async () => {
      const a = await createEvent(t, { event_type: 'pos' });
      const b = await createEvent(t, { event_type: 'pos' });
      const c = await createEvent(t, { event_type: 'pos' });
      expect(a.position).toBeLessThan(b.position);
      expect(b.position).toBeLessThan(c.position);
    });

    it.each([
      ['2024-03-05T10:11:12.345Z', '2024-03-05T10:11:12.345Z'],
      ['2024-03-05T10:11:12Z', '2024-03-05T10:11:12.000Z'],
      ['2024-03-05T12:11:12.5+02:00', '2024-03-05T10:11:12.500Z'],
      ['2024-03-05t10:11:12z', '2024-03-05T10:11:12.000Z'],
      ['2024-03-05 10:11:12Z', '2024-03-05T10:11:12.000Z'],
      ['2024-03-05T10:11:12.123456Z', '2024-03-05T10:11:12.123Z'],
      ['1970-01-01T00:00:00Z', '1970-01-01T00:00:00.000Z'],
      ['2000-02-29T23:59:59.999Z', '2000-02-29T23:59:59.999Z'],
      ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000Z'],
      ['0049-06-15T12:00:00Z', '0049-06-15T12:00:00.000Z'],
      ['0099-12-31T23:59:59Z', '0099-12-31T23:59:59.000Z'],
      ['9999-12-30T23:59:59.999Z', '9999-12-30T23:59:59.999Z'],
    ])('keeps the given timestamp %s', async (given, expected) => {
      const event = await createEvent(t, { event_type: 'ts', timestamp: given });
      expect(event.timestamp).toBe(expected);
      const read = await get(t, `/api/v1/events/${event.event_id}`);
      expect(read.json<EventJson>().timestamp).toBe(expected);
      // created_at is the time of receipt, not the event time
      expect(Math.abs(Date.parse(event.created_at) - Date.now())).toBeLessThan(60_000);
    });
  });

  describe('streams', () => {
    it('appends to a stream named by stream_id with versions 1, 2, 3', async () => {
      const id = uid('acct');
      const streamId = `account:${id}`;
      const versions: number[] = [];
      for (let i = 0; i < 3; i++) {
        const event = await createEvent(t, {
          event_type: 'account.changed',
          stream_id: streamId,
          data: { i },
        });
        expect(event).toMatchObject({ stream_id: streamId, entity_type: 'account', entity_id: id });
        versions.push(event.stream_version!);
      }
      expect(versions).toEqual([1, 2, 3]);
    });

    it('appends to a stream named by entity_type + entity_id with versions 1, 2, 3', async () => {
      const id = uid('ord');
      const versions: number[] = [];
      for (let i = 0; i < 3; i++) {
        const event = await createEvent(t, {
          event_type: 'order.changed',
          entity_type: 'order',
          entity_id: id,
        });
        expect(event).toMatchObject({ stream_id: `order:${id}`, entity_type: 'order', entity_id: id });
        versions.push(event.stream_version!);
      }
      expect(versions).toEqual([1, 2, 3]);
      // the same stream by stream_id, and by all three fields in agreement, continues the count
      const fourth = await createEvent(t, { event_type: 'order.changed', stream_id: `order:${id}` });
      expect(fourth.stream_version).toBe(4);
      const fifth = await createEvent(t, {
        event_type: 'order.changed',
        stream_id: `order:${id}`,
        entity_type: 'order',
        entity_id: id,
      });
      expect(fifth.stream_version).toBe(5);
    });

    it('splits a stream_id at the first colon: the entity id may contain colons', async () => {
      const id = `${uid('x')}:y:z`;
      const event = await createEvent(t, { event_type: 'colon', stream_id: `thing:${id}` });
      expect(event).toMatchObject({ entity_type: 'thing', entity_id: id, stream_version: 1 });
      const again = await createEvent(t, { event_type: 'colon', entity_type: 'thing', entity_id: id });
      expect(again).toMatchObject({ stream_id: `thing:${id}`, stream_version: 2 });
    });

    it('keeps streams apart', async () => {
      const a = `s:${uid('a')}`;
      const b = `s:${uid('b')}`;
      expect((await createEvent(t, { event_type: 'x', stream_id: a })).stream_version).toBe(1);
      expect((await createEvent(t, { event_type: 'x', stream_id: b })).stream_version).toBe(1);
      expect((await createEvent(t, { event_type: 'x', stream_id: a })).stream_version).toBe(2);
    });

    it.each([
      [{ stream_id: 'order:1', entity_type: 'invoice' }, 'body.stream_id'],
      [{ stream_id: 'order:1', entity_id: '2' }, 'body.stream_id'],
      [{ stream_id: 'order:1', entity_type: 'order', entity_id: '2' }, 'body.stream_id'],
      [{ stream_id: 'no-colon' }, 'body.stream_id'],
      [{ stream_id: ':abc' }, 'body.stream_id'],
      [{ stream_id: 'abc:' }, 'body.stream_id'],
      [{ entity_type: 'order' }, 'body.entity_id'],
      [{ entity_id: '1' }, 'body.entity_type'],
      [{ entity_type: 'a:b', entity_id: '1' }, 'body.entity_type'],
      [{ entity_type: 'a'.repeat(101), entity_id: '1' }, 'body.entity_type'],
      [{ entity_type: 'a', entity_id: 'b'.repeat(256) }, 'body.entity_id'],
      [{ stream_id: `${'a'.repeat(101)}:b` }, 'body.stream_id'],
      [{ stream_id: `a:${'b'.repeat(256)}` }, 'body.stream_id'],
      [{ stream_id: `${'a'.repeat(100)}:${'b'.repeat(257)}` }, 'body.stream_id'],
    ])('refuses inconsistent stream fields %j with 422', async (fields, path) => {
      const userId = uid('user');
      const res = await post(t, CREATE, { event_type: 'bad.stream', user_id: userId, ...fields });
      expect(validationPaths(res)).toContain(path);
      expect(await countOfUser(userId)).toBe(0);
    });
  });

  describe('expected_version', () => {
    function expectConflict(res: Awaited<ReturnType<typeof post>>, streamId: string, actual: number) {
      expect(res.statusCode, res.body).toBe(409);
      const body = res.json<ErrorJson>();
      expect(body).toMatchObject({ code: 'version_conflict', stream_id: streamId, actual_version: actual });
      expect(body.detail).toContain(streamId);
      return body;
    }

    it('any: appends whether or not the stream exists', async () => {
      const streamId = `ev:${uid('any')}`;
      const a = await createEvent(t, { event_type: 'x', stream_id: streamId, expected_version: 'any' });
      const b = await createEvent(t, { event_type: 'x', stream_id: streamId, expected_version: 'any' });
      expect([a.stream_version, b.stream_version]).toEqual([1, 2]);
    });

    it('no_stream: appends to a new stream, 409 with actual_version on an existing one', async () => {
      const streamId = `ev:${uid('ns')}`;
      const first = await createEvent(t, {
        event_type: 'x',
        stream_id: streamId,
        expected_version: 'no_stream',
      });
      expect(first.stream_version).toBe(1);
      const res = await post(t, CREATE, {
        event_type: 'x',
        stream_id: streamId,
        expected_version: 'no_stream',
      });
      const body = expectConflict(res, streamId, 1);
      expect(body.expected_version).toBe('no_stream');
      expect(await streamVersion(streamId)).toBe(1);
    });

    it('stream_exists: 409 with actual_version 0 on a new stream, appends to an existing one', async () => {
      const streamId = `ev:${uid('se')}`;
      const userId = uid('user');
      const res = await post(t, CREATE, {
        event_type: 'x',
        stream_id: streamId,
        user_id: userId,
        expected_version: 'stream_exists',
      });
      const body = expectConflict(res, streamId, 0);
      expect(body.expected_version).toBe('stream_exists');
      expect(await countOfUser(userId)).toBe(0);
      expect(await streamVersion(streamId)).toBe(0);
      // the failed attempt does not make the stream exist
      const again = await post(t, CREATE, {
        event_type: 'x',
        stream_id: streamId,
        expected_version: 'stream_exists',
      });
      expectConflict(again, streamId, 0);

      await createEvent(t, { event_type: 'x', stream_id: streamId });
      const ok = await createEvent(t, {
        event_type: 'x',
        stream_id: streamId,
        expected_version: 'stream_exists',
      });
      expect(ok.stream_version).toBe(2);
    });

    it('an exact number: 0 means no stream; a mismatch is a 409 with actual_version', async () => {
      const streamId = `ev:${uid('n')}`;
      const first = await createEvent(t, { event_type: 'x', stream_id: streamId, expected_version: 0 });
      expect(first.stream_version).toBe(1);
      expectConflict(
        await post(t, CREATE, { event_type: 'x', stream_id: streamId, expected_version: 0 }),
        streamId,
        1,
      );
      const second = await createEvent(t, { event_type: 'x', stream_id: streamId, expected_version: 1 });
      expect(second.stream_version).toBe(2);
      const stale = await post(t, CREATE, { event_type: 'x', stream_id: streamId, expected_version: 1 });
      expect(expectConflict(stale, streamId, 2).expected_version).toBe(1);
      const ahead = await post(t, CREATE, { event_type: 'x', stream_id: streamId, expected_version: 5 });
      expect(expectConflict(ahead, streamId, 2).expected_version).toBe(5);
      const third = await createEvent(t, {
        event_type: 'x',
        entity_type: 'ev',
        entity_id: streamId.slice(3),
        expected_version: 2,
      });
      expect(third.stream_version).toBe(3);
      expect(await streamVersion(streamId)).toBe(3);
    });

    it('an exact number above 0 on a new stream is a 409 with actual_version 0', async () => {
      const streamId = `ev:${uid('new')}`;
      expectConflict(
        await post(t, CREATE, { event_type: 'x', stream_id: streamId, expected_version: 3 }),
        streamId,
        0,
      );
      expect(await streamVersion(streamId)).toBe(0);
    });

    it.each(['no_stream', 'stream_exists', 0, 7])('%j without a stream is a 422', async (expected) => {
      const userId = uid('user');
      const res = await post(t, CREATE, { event_type: 'x', user_id: userId, expected_version: expected });
      expect(validationPaths(res)).toEqual(['body.expected_version']);
      expect(await countOfUser(userId)).toBe(0);
    });

    it('"any" without a stream is accepted', async () => {
      const event = await createEvent(t, { event_type: 'x', expected_version: 'any' });
      expect(event.stream_id).toBeNull();
    });

    it.each([['maybe'], [-1], [1.5], [null], [true], [2_147_483_648]])(
      'refuses expected_version %j with 422',
      async (expected) => {
        const res = await post(t, CREATE, { event_type: 'x', stream_id: 'a:b', expected_version: expected });
        expect(validationPaths(res)).toEqual(['body.expected_version']);
      },
    );
  });

  describe('idempotency', () => {
    it('a repeated idempotency_key with the same content returns the original event', async () => {
      const userId = uid('user');
      const key = uid('key');
      const body = {
        event_type: 'pay',
        user_id: userId,
        data: { amount: 5, b: [1, 2] },
        idempotency_key: key,
      };
      const first = await post(t, CREATE, body);
      expect(first.statusCode).toBe(201);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      const original = first.json<EventJson>();
      expect(original.idempotency_key).toBe(key);

      // same content, keys in another order
      const repeat = await post(t, CREATE, {
        idempotency_key: key,
        data: { b: [1, 2], amount: 5 },
        user_id: userId,
        event_type: 'pay',
      });
      expect(repeat.statusCode).toBe(201);
      expect(repeat.headers['idempotent-replayed']).toBe('true');
      expect(repeat.json()).toEqual(original);
      expect(await countOfUser(userId)).toBe(1);
    });

    it('a repeated idempotency_key with different content is a 409 and stores nothing', async () => {
      const userId = uid('user');
      const key = uid('key');
      await createEvent(t, { event_type: 'pay', user_id: userId, data: { amount: 5 }, idempotency_key: key });
      for (const change of [
        { data: { amount: 6 } },
        { event_type: 'pay2' },
        { timestamp: '2024-01-01T00:00:00Z' },
        { stream_id: `pay:${uid('p')}` },
        { event_category: 'payment' },
      ]) {
        const res = await post(t, CREATE, {
          event_type: 'pay',
          user_id: userId,
          data: { amount: 5 },
          idempotency_key: key,
          ...change,
        });
        expect(res.statusCode, JSON.stringify(change)).toBe(409);
        expect(res.json<ErrorJson>()).toMatchObject({
          code: 'idempotency_conflict',
          field: 'idempotency_key',
        });
      }
      expect(await countOfUser(userId)).toBe(1);
    });

    it('a repeat of a stream event does not advance the stream', async () => {
      const streamId = `idem:${uid('s')}`;
      const key = uid('key');
      const body = {
        event_type: 'x',
        stream_id: streamId,
        idempotency_key: key,
        expected_version: 'no_stream',
      };
      const first = await createEvent(t, body);
      const repeat = await post(t, CREATE, body);
      expect(repeat.statusCode).toBe(201);
      expect(repeat.headers['idempotent-replayed']).toBe('true');
      expect(repeat.json<EventJson>().event_id).toBe(first.event_id);
      expect(await streamVersion(streamId)).toBe(1);
    });

    it('a repeated client event_id with the same content returns the original event', async () => {
      const userId = uid('user');
      const eventId = uid('client-id');
      const body = {
        event_type: 'signup',
        user_id: userId,
        event_id: eventId,
        timestamp: '2024-05-01T00:00:00Z',
      };
      const first = await createEvent(t, body);
      expect(first.event_id).toBe(eventId);
      const repeat = await post(t, CREATE, body);
      expect(repeat.statusCode).toBe(201);
      expect(repeat.headers['idempotent-replayed']).toBe('true');
      expect(repeat.json()).toEqual(first);
      expect(await countOfUser(userId)).toBe(1);
    });

    it('a repeated client event_id with different content is a 409 and stores nothing', async () => {
      const userId = uid('user');
      const eventId = uid('client-id');
      const first = await createEvent(t, { event_type: 'signup', user_id: userId, event_id: eventId });
      const res = await post(t, CREATE, {
        event_type: 'signup',
        user_id: userId,
        event_id: eventId,
        data: { other: true },
      });
      expect(res.statusCode).toBe(409);
      expect(res.json<ErrorJson>()).toMatchObject({ code: 'idempotency_conflict', field: 'event_id' });
      expect(await countOfUser(userId)).toBe(1);
      const read = await get(t, `/api/v1/events/${encodeURIComponent(eventId)}`);
      expect(read.json()).toEqual(first);
    });

    it('an event_id taken by a generated id cannot be reused with other content', async () => {
      const original = await createEvent(t, { event_type: 'gen' });
      const res = await post(t, CREATE, { event_type: 'other', event_id: original.event_id });
      expect(res.statusCode).toBe(409);
      expect(res.json<ErrorJson>()).toMatchObject({ code: 'idempotency_conflict', field: 'event_id' });
    });

    it('an event stored without a client id or key is never a repeat, even of the same content', async () => {
      const original = await createEvent(t, { event_type: 'gen.same', data: { n: 1 } });
      const res = await post(t, CREATE, {
        event_type: 'gen.same',
        data: { n: 1 },
        event_id: original.event_id,
      });
      expect(res.statusCode).toBe(409);
      expect(res.json<ErrorJson>()).toMatchObject({ code: 'idempotency_conflict', field: 'event_id' });
      expect((await get(t, `/api/v1/events/${original.event_id}`)).json()).toEqual(original);
    });
  });

  describe('validation', () => {
    async function expectRefused(body: unknown, paths: string[]): Promise<void> {
      const userId = uid('user');
      const payload =
        body && typeof body === 'object' && !Array.isArray(body) && !('user_id' in body)
          ? { ...body, user_id: userId }
          : body;
      const res = await post(t, CREATE, payload);
      expect(validationPaths(res).sort()).toEqual([...paths].sort());
      const error = res.json<ErrorJson>();
      for (const problem of error.errors!) expect(problem.message.length).toBeGreaterThan(0);
      expect(await countOfUser(userId)).toBe(0);
    }

    it.each<[string, unknown, string[]]>([
      ['missing event_type', { data: {} }, ['body.event_type']],
      ['empty event_type', { event_type: '' }, ['body.event_type']],
      ['event_type not a string', { event_type: 12 }, ['body.event_type']],
      ['event_type too long', { event_type: 'x'.repeat(256) }, ['body.event_type']],
      ['user_id a number', { event_type: 'x', user_id: 123 }, ['body.user_id']],
      ['user_id empty', { event_type: 'x', user_id: '' }, ['body.user_id']],
      ['user_id too long', { event_type: 'x', user_id: 'u'.repeat(256) }, ['body.user_id']],
      ['session_id an object', { event_type: 'x', session_id: {} }, ['body.session_id']],
      ['unknown field', { event_type: 'x', colour: 'red' }, ['body.colour']],
      ['bad event_source', { event_type: 'x', event_source: 'mainframe' }, ['body.event_source']],
      ['bad event_category', { event_type: 'x', event_category: 'misc' }, ['body.event_category']],
      ['timestamp not a date', { event_type: 'x', timestamp: 'yesterday' }, ['body.timestamp']],
      ['timestamp without zone', { event_type: 'x', timestamp: '2024-01-01T00:00:00' }, ['body.timestamp']],
      [
        'timestamp impossible date',
        { event_type: 'x', timestamp: '2024-02-30T00:00:00Z' },
        ['body.timestamp'],
      ],
      ['timestamp a number', { event_type: 'x', timestamp: 1700000000000 }, ['body.timestamp']],
      ['timestamp a leap second', { event_type: 'x', timestamp: '2016-12-31T23:59:60Z' }, ['body.timestamp']],
      ['timestamp year 0', { event_type: 'x', timestamp: '0000-06-01T00:00:00Z' }, ['body.timestamp']],
      ['timestamp year 9999 end', { event_type: 'x', timestamp: '9999-12-31T00:00:00Z' }, ['body.timestamp']],
      ['data an array', { event_type: 'x', data: [1, 2] }, ['body.data']],
      ['data a string', { event_type: 'x', data: 'hello' }, ['body.data']],
      ['data null', { event_type: 'x', data: null }, ['body.data']],
      ['metadata a string', { event_type: 'x', metadata: 'm' }, ['body.metadata']],
      ['NUL in data', { event_type: 'x', data: { note: 'a\u0000b' } }, ['body.data.note']],
      ['NUL deep in data', { event_type: 'x', data: { a: { b: ['ok', 'x\u0000'] } } }, ['body.data.a.b[1]']],
      ['NUL in a data key', { event_type: 'x', data: { 'k\u0000': 1 } }, ['body.data']],
      ['NUL in metadata', { event_type: 'x', metadata: { m: '\u0000' } }, ['body.metadata.m']],
      ['NUL in event_type', { event_type: 'a\u0000b' }, ['body.event_type']],
      ['NUL in user_id', { event_type: 'x', user_id: 'u\u0000' }, ['body.user_id']],
      ['lone surrogate in data', { event_type: 'x', data: { s: '\ud800' } }, ['body.data.s']],
      ['idempotency_key empty', { event_type: 'x', idempotency_key: '' }, ['body.idempotency_key']],
      ['event_id too long', { event_type: 'x', event_id: 'e'.repeat(256) }, ['body.event_id']],
      ['stream_id too short', { event_type: 'x', stream_id: 'a:' }, ['body.stream_id']],
      [
        'several problems at once',
        { event_source: 'nope', user_id: 5, extra: 1, timestamp: 'bad' },
        ['body.event_type', 'body.event_source', 'body.user_id', 'body.extra', 'body.timestamp'],
      ],
      ['an array body', [{ event_type: 'x' }], ['body']],
      ['a string body', 'x', ['body']],
      ['null body', null, ['body']],
    ])('%s → 422', async (_name, body, paths) => {
      await expectRefused(body, paths);
    });

    it('deeply nested data is refused with 422, not a crash', async () => {
      let data: Record<string, unknown> = { leaf: 1 };
      for (let i = 0; i < 100; i++) data = { d: data };
      const res = await post(t, CREATE, { event_type: 'deep', data });
      expect(validationPaths(res)[0]).toMatch(/^body\.data/);
    });
  });
});
