import { gzipSync } from 'node:zlib';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../app.js';
import { createMemoryBus } from '../bus/memory.js';
import { loadConfig } from '../config.js';
import type { StoredEvent } from '../domain/event.js';
import { createEventStore } from '../store/index.js';
import { createPgDb } from '../store/pg.js';
import { STORE_KINDS, startTestApp, type TestApp } from '../test-support/app.js';
import { createTestDatabase } from '../test-support/db.js';
import { uid, type ErrorJson } from '../test-support/http.js';
import { TcpProxy, throughProxy } from '../test-support/tcp-proxy.js';

const WEBHOOK = '/webhooks/rudderstack';
const SECRET = 'rs-secret-0123';

interface Accepted {
  status: string;
  count: number;
  event_ids: string[];
  rejected?: { index: number; code: string; detail: string; errors: { path: string; message: string }[] }[];
}

function send(
  t: TestApp,
  payload: unknown,
  headers: Record<string, string> = { 'x-signature': SECRET },
  raw = false,
): Promise<LightMyRequestResponse> {
  return t.app.http.inject({
    method: 'POST',
    url: WEBHOOK,
    payload: raw ? (payload as string | Buffer) : JSON.stringify(payload),
    headers: { 'content-type': 'application/json', ...headers },
  });
}

function accepted(res: LightMyRequestResponse): Accepted {
  expect(res.statusCode, res.body).toBe(200);
  const body = res.json<Accepted>();
  expect(body.status).toBe('accepted');
  return body;
}

function expectError(res: LightMyRequestResponse, status: number, code: string): ErrorJson {
  expect(res.statusCode, res.body).toBe(status);
  const body = res.json<ErrorJson>();
  expect(body.code).toBe(code);
  expect(typeof body.detail).toBe('string');
  return body;
}

async function eventsOf(t: TestApp, userId: string): Promise<StoredEvent[]> {
  const page = await t.store.queryEvents({ user_id: userId }, { limit: 1000, offset: 0, includeTotal: true });
  return page.events;
}

/** A track message as RudderStack's webhook destination sends it. */
function trackMessage(userId: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'track',
    event: 'Product Reviewed',
    properties: { product_id: 'p-1', rating: 5 },
    userId,
    anonymousId: `anon-${userId}`,
    channel: 'web',
    context: {
      library: { name: 'RudderLabs JavaScript SDK', version: '3.0.0' },
      page: { url: 'https://example.com/p/1' },
      traits: { email: 'someone@example.com' },
      userAgent: 'Mozilla/5.0',
      ip: '203.0.113.7',
    },
    integrations: { All: true },
    messageId: uid('msg'),
    originalTimestamp: '2025-03-01T11:59:58.000Z',
    sentAt: '2025-03-01T11:59:59.000Z',
    receivedAt: '2025-03-01T12:00:00.500Z',
    timestamp: '2025-03-01T11:59:59.500Z',
    request_ip: '203.0.113.7',
    rudderId: uid('rudder'),
    ...overrides,
  };
}

describe.each(STORE_KINDS)('POST /webhooks/rudderstack (%s)', (kind) => {
  let t: TestApp;
  let open: TestApp;
  beforeAll(async () => {
    [t, open] = await Promise.all([
      startTestApp(kind, {
        RUDDERSTACK_WEBHOOK_SECRET: SECRET,
        BATCH_MAX_EVENTS: '5',
        BODY_LIMIT_BYTES: '65536',
      }),
      startTestApp(kind),
    ]);
  });
  afterAll(async () => {
    await Promise.all([t?.close(), open?.close()]);
  });

  describe('secret', () => {
    const basic = (user: string, password: string) =>
      `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

    it.each([
      ['X-Signature', { 'x-signature': SECRET }],
      ['a Bearer token', { authorization: `Bearer ${SECRET}` }],
      ['the Basic-auth password', { authorization: basic('rudderstack', SECRET) }],
    ])('is accepted as %s', async (_carrier, headers) => {
      const body = accepted(await send(t, trackMessage(uid('u')), headers));
      expect(body.count).toBe(1);
    });

    it.each([
      ['nothing', {}],
      ['a wrong X-Signature', { 'x-signature': 'wrong' }],
      ['a wrong Bearer token', { authorization: 'Bearer wrong' }],
      ['a wrong Basic password', { authorization: basic('rudderstack', 'wrong') }],
      ['the secret as Basic username', { authorization: basic(SECRET, '') }],
    ])('is missing with %s: 401 and nothing stored', async (_case, headers) => {
      const userId = uid('u');
      expectError(await send(t, trackMessage(userId), headers), 401, 'unauthorized');
      expect(await eventsOf(t, userId)).toHaveLength(0);
    });

    it('is refused before the body is read (a bad body is still a 401)', async () => {
      expectError(await send(t, '{not json', {}, true), 401, 'unauthorized');
    });

    it('is not needed when none is configured', async () => {
      const userId = uid('u');
      accepted(await send(open, trackMessage(userId), {}));
      expect(await eventsOf(open, userId)).toHaveLength(1);
    });
  });

  describe('mapping', () => {
    it('stores a track message with the seed`s mapping, after which it can be read', async () => {
      const userId = uid('u');
      const message = trackMessage(userId, { event: 'Signup Form Submitted', extra_field: { kept: false } });
      const body = accepted(await send(t, message));
      expect(body.count).toBe(1);
      expect(body.event_ids).toHaveLength(1);
      expect(body.rejected).toBeUndefined();

      const event = await t.store.getEvent(body.event_ids[0]!);
      expect(event).toMatchObject({
        event_type: 'Signup Form Submitted',
        event_source: 'frontend',
        event_category: 'form_submit',
        user_id: userId,
        data: { type: 'track', properties: { product_id: 'p-1', rating: 5 } },
        context: message.context as object,
        idempotency_key: `segment:${String(message.messageId)}`,
        stream_id: null,
        status: 'processed',
      });
      expect(event!.timestamp.toISOString()).toBe('2025-03-01T11:59:59.500Z');
      expect(event!.metadata).toEqual({
        ingest_channel: 'rudderstack_webhook',
        messageId: message.messageId,
        anonymousId: `anon-${userId}`,
        userId,
        originalTimestamp: '2025-03-01T11:59:58.000Z',
        sentAt: '2025-03-01T11:59:59.000Z',
        receivedAt: '2025-03-01T12:00:00.500Z',
        timestamp: '2025-03-01T11:59:59.500Z',
        channel: 'web',
        rudderId: message.rudderId,
        request_ip: '203.0.113.7',
        integrations: { All: true },
      });

      // and through the API
      const read = await t.app.http.inject({ method: 'GET', url: `/api/v1/events/${body.event_ids[0]}` });
      expect(read.statusCode).toBe(200);
    });

    it('stores an array of every type, in order, with their categories and fields', async () => {
      const userId = uid('u');
      const base = { userId, context: { traits: { email: 'x@example.com', plan: 'pro' } } };
      const messages = [
        { ...base, type: 'page', name: 'Home', category: 'Landing', properties: { path: '/' } },
        { ...base, type: 'track', event: 'CTA Clicked' },
        { ...base, type: 'identify' },
        { ...base, type: 'screen', name: 'Settings' },
        { ...base, type: 'group', groupId: 'g-1', traits: { name: 'Acme' } },
      ].map((m) => ({ ...m, messageId: uid('msg') }));
      const body = accepted(await send(t, messages));
      expect(body.count).toBe(5);
      const stored = await Promise.all(body.event_ids.map((id) => t.store.getEvent(id)));
      expect(stored.map((e) => [e!.event_type, e!.event_category])).toEqual([
        ['page', 'page_view'],
        ['CTA Clicked', 'click'],
        ['identify', 'user_action'],
        ['screen', 'user_action'],
        ['group', 'user_action'],
      ]);
      expect(stored[0]!.data).toEqual({
        type: 'page',
        properties: { path: '/' },
        name: 'Home',
        category: 'Landing',
      });
      expect(stored[2]!.data).toEqual({
        type: 'identify',
        properties: {},
        traits: { email: 'x@example.com', plan: 'pro' },
      });
      expect(stored[3]!.data).toEqual({ type: 'screen', properties: {}, name: 'Settings' });
      expect(stored[4]!.data).toEqual({
        type: 'group',
        properties: {},
        traits: { name: 'Acme' },
        groupId: 'g-1',
      });
      // positions follow the request order
      const positions = stored.map((e) => e!.position);
      expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    });

    it('maps alias and anonymous messages, and accepts the type in any case', async () => {
      const anon = uid('anon');
      const body = accepted(
        await send(t, [
          { type: 'Alias', previousId: anon, userId: uid('u'), messageId: uid('m') },
          { type: 'TRACK', event: 'Viewed', anonymousId: anon, messageId: uid('m') },
        ]),
      );
      const [alias, track] = await Promise.all(body.event_ids.map((id) => t.store.getEvent(id)));
      expect(alias!.data).toMatchObject({ type: 'alias', previousId: anon });
      expect(track).toMatchObject({ event_type: 'Viewed', user_id: anon, event_category: 'user_action' });
    });

    it('uses the receive time when the message has no time at all', async () => {
      const before = Date.now();
      const body = accepted(await send(t, { type: 'identify', userId: uid('u') }));
      const event = await t.store.getEvent(body.event_ids[0]!);
      expect(event!.timestamp.getTime()).toBeGreaterThanOrEqual(before - 1);
      expect(event!.timestamp.getTime()).toBeLessThanOrEqual(Date.now() + 1);
      expect(event!.idempotency_key).toBeNull();
    });
  });

  describe('retries', () => {
    it('stores a message once however often RudderStack sends it', async () => {
      const userId = uid('u');
      const message = trackMessage(userId);
      const first = accepted(await send(t, message));
      const second = accepted(await send(t, message));
      const inArray = accepted(await send(t, [trackMessage(userId, { messageId: uid('m') }), message]));
      expect(second.event_ids).toEqual(first.event_ids);
      expect(inArray.event_ids[1]).toBe(first.event_ids[0]);
      expect(await eventsOf(t, userId)).toHaveLength(2);
    });

    it('treats a repeat inside one request as the same message', async () => {
      const userId = uid('u');
      const message = trackMessage(userId);
      const body = accepted(await send(t, [message, message]));
      expect(body.event_ids[0]).toBe(body.event_ids[1]);
      expect(await eventsOf(t, userId)).toHaveLength(1);
    });

    it('refuses another message under a used messageId (400: RudderStack drops it)', async () => {
      const userId = uid('u');
      const message = trackMessage(userId);
      accepted(await send(t, message));
      const body = expectError(
        await send(t, { ...message, properties: { changed: true } }),
        400,
        'invalid_payload',
      );
      expect(body.errors).toEqual([{ path: 'body', message: expect.stringContaining('segment:') }]);
      expect(await eventsOf(t, userId)).toHaveLength(1);
    });
  });

  describe('what can never succeed is a 400, the rest is stored', () => {
    it.each([
      ['a JSON string', '"hello"'],
      ['a JSON number', '42'],
      ['null', 'null'],
      ['an empty array', '[]'],
    ])('%s', async (_case, raw) => {
      expectError(await send(t, raw, undefined, true), 400, 'invalid_payload');
    });

    it('malformed JSON and an empty body', async () => {
      expectError(await send(t, '{"type": "track",', undefined, true), 400, 'malformed_json');
      expectError(await send(t, '', undefined, true), 400, 'malformed_json');
    });

    it.each([
      ['no type', { event: 'x' }, 'body.type'],
      ['an unknown type', { type: 'purchase', event: 'x' }, 'body.type'],
      ['track without event', { type: 'track', userId: 'u' }, 'body.event'],
      [
        'properties that are not an object',
        { type: 'track', event: 'x', properties: [1] },
        'body.properties',
      ],
      ['an event name longer than 255', { type: 'track', event: 'x'.repeat(256) }, 'body.event'],
    ])('%s', async (_case, message, path) => {
      const body = expectError(await send(t, message), 400, 'invalid_payload');
      expect(body.errors!.map((e) => e.path)).toContain(path);
    });

    it('keeps the good messages of an array and reports the bad ones', async () => {
      const userId = uid('u');
      const body = accepted(
        await send(t, [
          { type: 'track', userId },
          trackMessage(userId),
          { type: 'nonsense' },
          { type: 'page', userId, messageId: uid('m') },
        ]),
      );
      expect(body.count).toBe(2);
      expect(body.rejected!.map((r) => r.index)).toEqual([0, 2]);
      expect(body.rejected![0]).toMatchObject({
        code: 'validation_failed',
        errors: [{ path: 'body[0].event', message: 'is required' }],
      });
      expect(await eventsOf(t, userId)).toHaveLength(2);
    });

    it('answers 400 naming every message when none is good', async () => {
      const body = expectError(
        await send(t, [{ type: 'track' }, 'text', { type: 'x' }]),
        400,
        'invalid_payload',
      );
      expect(body.errors!.map((e) => e.path)).toEqual(['body[0].event', 'body[1]', 'body[2].type']);
    });

    it('accepts unknown fields and any content type', async () => {
      const userId = uid('u');
      const message = { ...trackMessage(userId), future_field: [1, 2], context: { new: { nested: true } } };
      accepted(await send(t, message, { 'x-signature': SECRET, 'content-type': 'text/plain' }));
      accepted(
        await t.app.http.inject({
          method: 'POST',
          url: WEBHOOK,
          payload: JSON.stringify(trackMessage(userId)),
          headers: { 'x-signature': SECRET },
        }),
      );
      expect(await eventsOf(t, userId)).toHaveLength(2);
    });
  });

  describe('limits', () => {
    it('takes at most BATCH_MAX_EVENTS messages', async () => {
      const userId = uid('u');
      const six = Array.from({ length: 6 }, () => trackMessage(userId));
      expectError(await send(t, six), 413, 'body_too_large');
      accepted(await send(t, six.slice(0, 5)));
    });

    it('takes gzip bodies', async () => {
      const userId = uid('u');
      const res = await send(
        t,
        gzipSync(JSON.stringify([trackMessage(userId), trackMessage(userId)])),
        {
          'x-signature': SECRET,
          'content-encoding': 'gzip',
        },
        true,
      );
      expect(accepted(res).count).toBe(2);
      expect(await eventsOf(t, userId)).toHaveLength(2);
    });

    it('refuses a body over BODY_LIMIT_BYTES once decompressed (413), and broken gzip (400)', async () => {
      const bomb = gzipSync(
        JSON.stringify({ type: 'track', event: 'x', properties: { pad: 'x'.repeat(10_000_000) } }),
      );
      expect(bomb.length).toBeLessThan(65536);
      const headers = { 'x-signature': SECRET, 'content-encoding': 'gzip' };
      expectError(await send(t, bomb, headers, true), 413, 'body_too_large');
      expectError(await send(t, Buffer.from('not gzip'), headers, true), 400, 'invalid_payload');
      expectError(await send(t, 'x'.repeat(70_000), undefined, true), 413, 'body_too_large');
    });
  });
});

describe('POST /webhooks/rudderstack while PostgreSQL is down (postgres)', () => {
  it('answers 503 (RudderStack retries) and stores the retry once PostgreSQL is back', async () => {
    const database = await createTestDatabase();
    const target = new URL(database.url);
    const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.start();
    const db = createPgDb({
      connectionString: throughProxy(database.url, proxy),
      poolSize: 2,
      statementTimeoutMs: 10_000,
    });
    const store = createEventStore(db);
    const bus = createMemoryBus();
    const app = await buildApp({ config: loadConfig({ LOG_LEVEL: 'silent' }), store, bus, logger: false });
    const t = { app, store } as unknown as TestApp;
    try {
      const userId = uid('u');
      const message = trackMessage(userId);
      await proxy.pause();
      const down = await send(t, message, {});
      expectError(down, 503, 'store_unavailable');
      expect(down.headers['retry-after']).toBe('1');

      await proxy.resume();
      const first = accepted(await send(t, message, {}));
      const again = accepted(await send(t, message, {}));
      expect(again.event_ids).toEqual(first.event_ids);
      expect(await eventsOf(t, userId)).toHaveLength(1);
    } finally {
      await app.http.close();
      await store.drain();
      await bus.close();
      await db.close();
      await proxy.close();
      await database.drop();
    }
  });
});
