import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import Rudder from '@rudderstack/rudder-sdk-node';
import { Analytics } from '@segment/analytics-node';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../domain/event.js';
import { STORE_KINDS, startTestApp, type TestApp } from '../test-support/app.js';
import { uid, type ErrorJson } from '../test-support/http.js';

const KEYS = ['wk-one', 'wk-two'];
const basic = (user: string, password = '') =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const AUTH = { authorization: basic(KEYS[0]!) };
const TYPES = ['track', 'page', 'screen', 'identify', 'group', 'alias'] as const;

interface Accepted {
  success: true;
  rejected?: { index: number; code: string; detail: string; errors: { path: string; message: string }[] }[];
}

function send(
  t: TestApp,
  url: string,
  payload: unknown,
  headers: Record<string, string> = AUTH,
  raw = false,
): Promise<LightMyRequestResponse> {
  return t.app.http.inject({
    method: 'POST',
    url,
    payload: raw ? (payload as string | Buffer) : JSON.stringify(payload),
    headers: { 'content-type': 'application/json', ...headers },
  });
}

function accepted(res: LightMyRequestResponse): Accepted {
  expect(res.statusCode, res.body).toBe(200);
  const body = res.json<Accepted>();
  expect(body.success).toBe(true);
  return body;
}

function expectError(res: LightMyRequestResponse, status: number, code: string): ErrorJson {
  expect(res.statusCode, res.body).toBe(status);
  const body = res.json<ErrorJson>();
  expect(body.code).toBe(code);
  return body;
}

/** The events of a user, oldest first. */
async function eventsOf(t: TestApp, userId: string): Promise<StoredEvent[]> {
  const page = await t.store.queryEvents({ user_id: userId }, { limit: 1000, offset: 0, includeTotal: true });
  return page.events.sort((a, b) => a.position - b.position);
}

describe.each(STORE_KINDS)('tracking API (%s)', (kind) => {
  let t: TestApp;
  let off: TestApp;
  beforeAll(async () => {
    [t, off] = await Promise.all([
      startTestApp(kind, { WRITE_KEYS: ` ${KEYS.join(' , ')} ` }),
      startTestApp(kind),
    ]);
  });
  afterAll(async () => {
    await Promise.all([t?.close(), off?.close()]);
  });

  describe('write key', () => {
    it.each([
      ['the Basic username', { authorization: basic(KEYS[0]!) }, {}],
      ['the second key', { authorization: basic(KEYS[1]!) }, {}],
      ['the Basic username with a password (ignored)', { authorization: basic(KEYS[0]!, 'anything') }, {}],
      ['writeKey in the body', {}, { writeKey: KEYS[1] }],
      ['writeKey in the body beside a wrong header', { authorization: basic('nope') }, { writeKey: KEYS[0] }],
    ])('is accepted as %s', async (_carrier, headers, extra) => {
      const userId = uid('u');
      accepted(await send(t, '/v1/track', { event: 'E', userId, ...extra }, headers));
      const [event] = await eventsOf(t, userId);
      // a credential is never stored
      expect(JSON.stringify(event)).not.toContain('wk-');
    });

    it('is accepted in the body of a batch', async () => {
      const userId = uid('u');
      accepted(
        await send(t, '/v1/batch', { writeKey: KEYS[0], batch: [{ type: 'track', event: 'E', userId }] }, {}),
      );
      expect(await eventsOf(t, userId)).toHaveLength(1);
    });

    it.each([
      ['nothing', {}, {}],
      ['an unknown key', { authorization: basic('wk-three') }, {}],
      ['the key as password only', { authorization: basic('', KEYS[0]) }, {}],
      ['a Bearer token', { authorization: `Bearer ${KEYS[0]}` }, {}],
      ['an unknown writeKey in the body', {}, { writeKey: 'nope' }],
    ])('is missing with %s: 401 and nothing stored', async (_case, headers, extra) => {
      const userId = uid('u');
      const res = await send(t, '/v1/track', { event: 'E', userId, ...extra }, headers);
      expectError(res, 401, 'unauthorized');
      expect(res.headers['www-authenticate']).toBe('Basic realm="tracking"');
      expect(await eventsOf(t, userId)).toHaveLength(0);
    });

    it('is refused on every endpoint when WRITE_KEYS is not set', async () => {
      for (const path of [...TYPES.map((type) => `/v1/${type}`), '/v1/batch']) {
        expectError(await send(off, path, { event: 'E', userId: 'u', batch: [] }, AUTH), 401, 'unauthorized');
      }
    });
  });

  describe('endpoints', () => {
    it('stores one message per endpoint, typed by the path', async () => {
      const userId = uid('u');
      const bodies: Record<(typeof TYPES)[number], Record<string, unknown>> = {
        track: { event: 'Newsletter Form Sent', properties: { list: 'weekly' } },
        page: { name: 'Pricing', category: 'Marketing', properties: { path: '/pricing' } },
        screen: { name: 'Dashboard' },
        identify: { traits: { email: 'x@example.com' } },
        group: { groupId: 'org-1', traits: { name: 'Acme' } },
        alias: { previousId: 'anon-1' },
      };
      for (const type of TYPES) {
        // a `type` in the body does not override the path
        accepted(
          await send(t, `/v1/${type}`, { ...bodies[type], type: 'track', userId, messageId: uid('m') }),
        );
      }
      const events = await eventsOf(t, userId);
      expect(events.map((e) => [e.event_type, e.event_category, e.data.type])).toEqual([
        ['Newsletter Form Sent', 'form_submit', 'track'],
        ['page', 'page_view', 'page'],
        ['screen', 'user_action', 'screen'],
        ['identify', 'user_action', 'identify'],
        ['group', 'user_action', 'group'],
        ['alias', 'user_action', 'alias'],
      ]);
      expect(events.every((e) => e.event_source === 'frontend')).toBe(true);
      expect(events.every((e) => e.metadata.ingest_channel === 'tracking_api')).toBe(true);
      expect(events[1]!.data).toEqual({
        type: 'page',
        properties: { path: '/pricing' },
        name: 'Pricing',
        category: 'Marketing',
      });
      expect(events[4]!.data).toEqual({
        type: 'group',
        properties: {},
        traits: { name: 'Acme' },
        groupId: 'org-1',
      });
      expect(events[5]!.data).toEqual({ type: 'alias', properties: {}, previousId: 'anon-1' });
    });

    it('answers 400 for a message that can never be stored', async () => {
      expectError(await send(t, '/v1/track', { userId: 'u' }), 400, 'invalid_payload');
      expectError(await send(t, '/v1/track', [{ event: 'E' }]), 400, 'invalid_payload');
      expectError(await send(t, '/v1/page', { properties: 'x' }), 400, 'invalid_payload');
      expectError(await send(t, '/v1/identify', '{"userId":', AUTH, true), 400, 'malformed_json');
    });

    it('accepts any content type (SDKs send JSON as form-urlencoded or text/plain)', async () => {
      const userId = uid('u');
      for (const contentType of [
        'application/x-www-form-urlencoded',
        'text/plain',
        'application/json; charset=utf-8',
      ]) {
        accepted(
          await send(t, '/v1/track', { event: 'E', userId }, { ...AUTH, 'content-type': contentType }),
        );
      }
      expect(await eventsOf(t, userId)).toHaveLength(3);
    });
  });

  it('is described in /docs/json, messages open to unknown fields', async () => {
    const res = await t.app.http.inject({ method: 'GET', url: '/docs/json' });
    const doc = res.json<{ paths: Record<string, { post: { tags: string[]; requestBody: unknown } }> }>();
    for (const path of ['/webhooks/rudderstack', '/v1/batch', ...TYPES.map((type) => `/v1/${type}`)]) {
      expect(doc.paths[path]?.post.tags).toEqual(['ingest']);
    }
    const batch = doc.paths['/v1/batch']!.post.requestBody as {
      content: Record<
        string,
        { schema: { properties: { batch: { items: { additionalProperties: unknown } } } } }
      >;
    };
    expect(batch.content['application/json']!.schema.properties.batch.items.additionalProperties).toBe(true);
  });

  describe('batch', () => {
    it('merges the batch context under each message`s and uses the batch sentAt', async () => {
      const userId = uid('u');
      accepted(
        await send(t, '/v1/batch', {
          batch: [
            {
              type: 'track',
              event: 'A',
              userId,
              context: { library: { name: 'mine' }, page: { url: '/a' } },
            },
            { type: 'page', userId, originalTimestamp: '2025-01-01T00:00:00.000Z' },
          ],
          context: { library: { name: 'batch', version: '9' }, ip: '198.51.100.1' },
          sentAt: '2025-01-01T00:00:05.000Z',
        }),
      );
      const [a, b] = await eventsOf(t, userId);
      expect(a!.context).toEqual({
        library: { name: 'mine', version: '9' },
        page: { url: '/a' },
        ip: '198.51.100.1',
      });
      expect(b!.context).toEqual({ library: { name: 'batch', version: '9' }, ip: '198.51.100.1' });
      expect(b!.metadata.sentAt).toBe('2025-01-01T00:00:05.000Z');
    });

    it('corrects the device`s clock skew when the message has no timestamp', async () => {
      // The device's clock is far behind: it says the event happened 10 s before it was sent.
      const userId = uid('u');
      const before = Date.now();
      accepted(
        await send(t, '/v1/batch', {
          batch: [
            { type: 'track', event: 'Skewed', userId, originalTimestamp: '2000-01-01T00:00:00.000Z' },
            {
              type: 'track',
              event: 'Own sentAt',
              userId,
              originalTimestamp: '2000-01-01T00:00:00.000Z',
              sentAt: '2000-01-01T00:01:00.000Z',
            },
            { type: 'track', event: 'Given', userId, timestamp: '2024-05-05T05:05:05.000Z' },
          ],
          sentAt: '2000-01-01T00:00:10.000Z',
        }),
      );
      const after = Date.now();
      const [skewed, ownSentAt, given] = await eventsOf(t, userId);
      const at = skewed!.timestamp.getTime();
      expect(at).toBeGreaterThanOrEqual(before - 10_000);
      expect(at).toBeLessThanOrEqual(after - 10_000);
      expect(ownSentAt!.timestamp.getTime()).toBe(at - 50_000);
      expect(given!.timestamp.toISOString()).toBe('2024-05-05T05:05:05.000Z');
    });

    it('stores a batch once, even when a retry has another sentAt', async () => {
      const userId = uid('u');
      const batch = [
        { type: 'track', event: 'A', userId, messageId: uid('m'), originalTimestamp: '2025-01-01T00:00:00Z' },
        { type: 'identify', userId, messageId: uid('m'), traits: { plan: 'pro' } },
      ];
      accepted(await send(t, '/v1/batch', { batch, sentAt: '2025-01-01T00:00:01Z' }));
      const first = await eventsOf(t, userId);
      accepted(await send(t, '/v1/batch', { batch, sentAt: '2025-01-01T00:09:00Z' }));
      // the same message through the single endpoint is the same message too
      accepted(await send(t, '/v1/identify', batch[1]));
      const again = await eventsOf(t, userId);
      expect(again).toEqual(first);
    });

    it('keeps the other messages when one is larger than 32 KB, and reports it', async () => {
      const userId = uid('u');
      const big = { type: 'track', event: 'Big', userId, properties: { blob: 'x'.repeat(33 * 1024) } };
      const body = accepted(
        await send(t, '/v1/batch', {
          batch: [big, { type: 'track', event: 'Small', userId }, { type: 'track', userId }],
        }),
      );
      expect(body.rejected).toEqual([
        {
          index: 0,
          code: 'body_too_large',
          detail: 'Message is larger than 32768 bytes',
          errors: [{ path: 'body.batch[0]', message: 'is larger than 32768 bytes' }],
        },
        {
          index: 2,
          code: 'validation_failed',
          detail: expect.any(String),
          errors: [{ path: 'body.batch[2].event', message: 'is required' }],
        },
      ]);
      expect((await eventsOf(t, userId)).map((e) => e.event_type)).toEqual(['Small']);
      // alone, it can never be stored
      expectError(await send(t, '/v1/track', big), 400, 'invalid_payload');
    });

    it('answers 400 when no message can be stored, or there is no batch', async () => {
      const res = await send(t, '/v1/batch', { batch: [{ type: 'nope' }, 3] });
      expect(expectError(res, 400, 'invalid_payload').errors!.map((e) => e.path)).toEqual([
        'body.batch[0].type',
        'body.batch[1]',
      ]);
      expectError(await send(t, '/v1/batch', { batch: [] }), 400, 'invalid_payload');
      expectError(await send(t, '/v1/batch', { events: [] }), 400, 'invalid_payload');
      expectError(await send(t, '/v1/batch', [{ type: 'page' }]), 400, 'invalid_payload');
    });
  });

  describe('gzip and size limits', () => {
    it('takes gzip bodies', async () => {
      const userId = uid('u');
      const batch = Array.from({ length: 50 }, (_, i) => ({ type: 'track', event: `E${i}`, userId }));
      accepted(
        await send(
          t,
          '/v1/batch',
          gzipSync(JSON.stringify({ batch })),
          { ...AUTH, 'content-encoding': 'gzip' },
          true,
        ),
      );
      expect(await eventsOf(t, userId)).toHaveLength(50);
    });

    it('refuses more than 500 KB, counted after decompression (413), and nothing is stored', async () => {
      const userId = uid('u');
      // 20 messages of 30 KB each: every message is within its limit, the batch is not.
      const batch = Array.from({ length: 20 }, () => ({
        type: 'track',
        event: 'E',
        userId,
        properties: { pad: 'y'.repeat(30 * 1024) },
      }));
      const json = JSON.stringify({ batch });
      expect(json.length).toBeGreaterThan(500 * 1024);
      const gzipped = gzipSync(json);
      expect(gzipped.length).toBeLessThan(10 * 1024);
      expectError(
        await send(t, '/v1/batch', gzipped, { ...AUTH, 'content-encoding': 'gzip' }, true),
        413,
        'body_too_large',
      );
      expectError(await send(t, '/v1/batch', json, AUTH, true), 413, 'body_too_large');
      // a bomb: 1 GiB of zeros would be 1 MiB compressed; 64 MiB here
      const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20));
      expectError(
        await send(t, '/v1/batch', bomb, { ...AUTH, 'content-encoding': 'gzip' }, true),
        413,
        'body_too_large',
      );
      expect(await eventsOf(t, userId)).toHaveLength(0);
      // just under the limit is fine
      accepted(await send(t, '/v1/batch', { batch: batch.slice(0, 15) }));
      expect(await eventsOf(t, userId)).toHaveLength(15);
    });

    it('answers 400 for a body that is not gzip though it says so', async () => {
      expectError(
        await send(t, '/v1/track', '{"event":"E"}', { ...AUTH, 'content-encoding': 'gzip' }, true),
        400,
        'invalid_payload',
      );
    });
  });
});

/**
 * Sits in front of the service and, for the first `failures` requests, forwards them (so they are
 * stored) and then answers 503 as if the answer had been lost: the SDK retries the same batch.
 */
async function startAnswerLosingProxy(target: string, failures: number) {
  const upstreamStatuses: number[] = [];
  let lost = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (typeof value === 'string' && !['host', 'content-length', 'connection'].includes(name)) {
          headers[name] = value;
        }
      }
      void fetch(`${target}${req.url}`, { method: req.method, headers, body: Buffer.concat(chunks) })
        .then(async (upstream) => {
          const text = await upstream.text();
          upstreamStatuses.push(upstream.status);
          if (lost < failures) {
            lost++;
            res.writeHead(503, { 'content-type': 'application/json' }).end('{"detail":"lost"}');
          } else {
            res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(text);
          }
        })
        .catch(() => res.writeHead(502).end());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    upstreamStatuses,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('the real Segment and RudderStack SDKs (postgres)', () => {
  let t: TestApp;
  let url: string;
  beforeAll(async () => {
    t = await startTestApp('postgres', { WRITE_KEYS: KEYS.join(',') });
    await t.app.http.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(t.app.http.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await t?.close();
  });

  function segment(host: string, writeKey = KEYS[0]!) {
    const analytics = new Analytics({ writeKey, host, flushAt: 50, flushInterval: 60_000, maxRetries: 3 });
    const statuses: number[] = [];
    const errors: unknown[] = [];
    analytics.on('http_response', (response) => statuses.push(response.status));
    analytics.on('error', (error) => errors.push(error));
    return { analytics, statuses, errors };
  }

  function rudder(host: string, writeKey = KEYS[1]!) {
    const errors: unknown[] = [];
    const analytics = new Rudder(writeKey, {
      dataPlaneUrl: host,
      flushAt: 50,
      flushInterval: 60_000,
      logLevel: 'none',
      errorHandler: (error: unknown) => errors.push(error),
    });
    return { analytics, errors };
  }

  it('@segment/analytics-node: every call type arrives mapped', async () => {
    const userId = uid('seg');
    const { analytics, statuses, errors } = segment(url);
    const ts = new Date('2025-02-02T02:02:02.000Z');
    analytics.track({ userId, event: 'Checkout Button Clicked', properties: { total: 42 }, timestamp: ts });
    analytics.page({ userId, name: 'Cart', category: 'Shop', properties: { path: '/cart' } });
    analytics.screen({ userId, name: 'Home' });
    analytics.identify({ userId, traits: { email: 'seg@example.com' } });
    analytics.group({ userId, groupId: 'org-7', traits: { name: 'Seven' } });
    analytics.alias({ userId, previousId: 'anon-seg' });
    await analytics.closeAndFlush({ timeout: 20_000 });
    expect(errors).toEqual([]);
    expect(statuses).toEqual([200]);

    const events = await eventsOf(t, userId);
    expect(events.map((e) => [e.event_type, e.event_category])).toEqual([
      ['Checkout Button Clicked', 'click'],
      ['page', 'page_view'],
      ['screen', 'user_action'],
      ['identify', 'user_action'],
      ['group', 'user_action'],
      ['alias', 'user_action'],
    ]);
    const [track, page, screen, identify, group, alias] = events;
    expect(track!.timestamp.toISOString()).toBe(ts.toISOString());
    expect(track!.data).toEqual({ type: 'track', properties: { total: 42 } });
    expect(track!.context).toMatchObject({ library: { name: '@segment/analytics-node' } });
    expect(track!.metadata).toMatchObject({
      ingest_channel: 'tracking_api',
      userId,
      sentAt: expect.any(String),
    });
    expect(track!.idempotency_key).toBe(`segment:${String(track!.metadata.messageId)}`);
    // analytics-node copies the page category into the properties itself
    expect(page!.data).toEqual({
      type: 'page',
      properties: { path: '/cart', category: 'Shop' },
      name: 'Cart',
      category: 'Shop',
    });
    expect(screen!.data).toMatchObject({ type: 'screen', name: 'Home' });
    expect(identify!.data).toEqual({
      type: 'identify',
      properties: {},
      traits: { email: 'seg@example.com' },
    });
    expect(group!.data).toEqual({
      type: 'group',
      properties: {},
      traits: { name: 'Seven' },
      groupId: 'org-7',
    });
    expect(alias!.data).toEqual({ type: 'alias', properties: {}, previousId: 'anon-seg' });
    expect(JSON.stringify(events)).not.toContain(KEYS[0]);
  });

  it('@segment/analytics-node: the same messageId twice is stored once', async () => {
    const userId = uid('seg');
    const messageId = uid('fixed');
    const timestamp = new Date('2025-02-02T00:00:00Z');
    for (let i = 0; i < 2; i++) {
      const { analytics, errors } = segment(url);
      analytics.track({ userId, event: 'Once', messageId, timestamp });
      await analytics.closeAndFlush({ timeout: 20_000 });
      expect(errors).toEqual([]);
    }
    const events = await eventsOf(t, userId);
    expect(events).toHaveLength(1);
    expect(events[0]!.idempotency_key).toBe(`segment:${messageId}`);
  });

  it('@segment/analytics-node: a retry after a lost answer stores nothing twice', async () => {
    const proxy = await startAnswerLosingProxy(url, 1);
    try {
      const userId = uid('seg');
      const { analytics, statuses, errors } = segment(proxy.url);
      analytics.track({ userId, event: 'Retried' });
      analytics.identify({ userId, traits: { n: 1 } });
      await analytics.closeAndFlush({ timeout: 20_000 });
      expect(errors).toEqual([]);
      expect(statuses).toEqual([503, 200]);
      expect(proxy.upstreamStatuses).toEqual([200, 200]);
      expect((await eventsOf(t, userId)).map((e) => e.event_type)).toEqual(['Retried', 'identify']);
    } finally {
      await proxy.close();
    }
  });

  it('@segment/analytics-node: an unknown write key is refused', async () => {
    const userId = uid('seg');
    const { analytics, statuses } = segment(url, 'not-a-key');
    analytics.track({ userId, event: 'Nope' });
    await analytics.closeAndFlush({ timeout: 20_000 });
    expect(statuses).toEqual([401]);
    expect(await eventsOf(t, userId)).toHaveLength(0);
  });

  it('@rudderstack/rudder-sdk-node (gzip): every call type arrives mapped, time corrected for skew', async () => {
    const userId = uid('rud');
    const { analytics, errors } = rudder(url);
    const before = Date.now();
    // The device's clock says the event happened a minute before it was sent.
    const originalTimestamp = new Date(Date.now() - 60_000);
    analytics.track({
      userId,
      event: 'Contact Form Submitted',
      properties: { topic: 'sales' },
      originalTimestamp,
    } as never);
    analytics.page({ userId, name: 'Docs', category: 'Help', properties: { path: '/docs' } });
    analytics.screen({ userId, name: 'Settings' });
    analytics.identify({ userId, traits: { email: 'rud@example.com' } });
    analytics.group({ userId, groupId: 'org-9', traits: { name: 'Nine' } });
    analytics.alias({ userId, previousId: 'anon-rud' });
    await analytics.flush();
    await analytics.flush();
    expect(errors).toEqual([]);

    const events = await eventsOf(t, userId);
    expect(events.map((e) => [e.event_type, e.event_category])).toEqual([
      ['Contact Form Submitted', 'form_submit'],
      ['page', 'page_view'],
      ['screen', 'user_action'],
      ['identify', 'user_action'],
      ['group', 'user_action'],
      ['alias', 'user_action'],
    ]);
    const [track, page, screen, identify, group, alias] = events;
    expect(track!.data).toEqual({ type: 'track', properties: { topic: 'sales' } });
    expect(track!.context).toMatchObject({ library: { name: 'analytics-node' } });
    expect(track!.metadata).toMatchObject({
      ingest_channel: 'tracking_api',
      channel: 'server',
      originalTimestamp: originalTimestamp.toISOString(),
    });
    // timestamp = receivedAt - (sentAt - originalTimestamp): received between `before` and the commit
    const sentAt = Date.parse(track!.metadata.sentAt as string);
    const receivedAt = track!.timestamp.getTime() + (sentAt - originalTimestamp.getTime());
    expect(receivedAt).toBeGreaterThanOrEqual(before);
    expect(receivedAt).toBeLessThanOrEqual(track!.created_at.getTime() + 1);
    expect(page!.data).toEqual({
      type: 'page',
      properties: { path: '/docs' },
      name: 'Docs',
      category: 'Help',
    });
    expect(screen!.data).toMatchObject({ type: 'screen', name: 'Settings' });
    // RudderStack copies identify traits into context.traits too
    expect(identify!.data).toEqual({
      type: 'identify',
      properties: {},
      traits: { email: 'rud@example.com' },
    });
    expect(identify!.context).toMatchObject({ traits: { email: 'rud@example.com' } });
    expect(group!.data).toEqual({
      type: 'group',
      properties: {},
      traits: { name: 'Nine' },
      groupId: 'org-9',
    });
    expect(alias!.data).toEqual({ type: 'alias', properties: {}, previousId: 'anon-rud' });
  });

  it('@rudderstack/rudder-sdk-node: the same messageId twice, and a retry after a lost answer, are stored once', async () => {
    const userId = uid('rud');
    const messageId = uid('fixed');
    const originalTimestamp = new Date('2025-02-02T00:00:00Z');
    for (let i = 0; i < 2; i++) {
      const { analytics, errors } = rudder(url);
      analytics.track({ userId, event: 'Once', messageId, originalTimestamp } as never);
      await analytics.flush();
      expect(errors).toEqual([]);
    }
    expect(await eventsOf(t, userId)).toHaveLength(1);

    const proxy = await startAnswerLosingProxy(url, 1);
    try {
      const { analytics, errors } = rudder(proxy.url);
      analytics.track({ userId, event: 'Retried' });
      await analytics.flush();
      expect(errors).toEqual([]);
      expect(proxy.upstreamStatuses).toEqual([200, 200]);
      expect((await eventsOf(t, userId)).map((e) => e.event_type)).toEqual(['Once', 'Retried']);
    } finally {
      await proxy.close();
    }
  });
});
