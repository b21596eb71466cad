/**
 * The frontend collector with the in-process bus (events committed to the store directly), on
 * PostgreSQL and PGlite: the HTTP policy (CORS, sendBeacon bodies, limits, rate limit, client IP)
 * and what lands in the store.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, STORE_KINDS, type TestApp } from '../test-support/app.js';
import { get, uid, type ErrorJson, type EventJson } from '../test-support/http.js';

const FRONTEND = '/api/v1/events/frontend';

interface Accepted {
  status: string;
  event_id: string;
  message: string;
}

interface BatchAccepted {
  status: string;
  count: number;
  event_ids: string[];
}

function send(
  t: TestApp,
  url: string,
  payload: unknown,
  options: { headers?: Record<string, string>; remoteAddress?: string } = {},
): Promise<LightMyRequestResponse> {
  return t.app.http.inject({
    method: 'POST',
    url,
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    headers: { 'content-type': 'application/json', ...options.headers },
    remoteAddress: options.remoteAddress,
  });
}

async function stored(t: TestApp, eventId: string): Promise<EventJson> {
  const res = await get(t, `/api/v1/events/${encodeURIComponent(eventId)}`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<EventJson>();
}

describe.each(STORE_KINDS)('frontend collector without NATS (%s)', (kind) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp(kind, {
      FRONTEND_BODY_LIMIT_BYTES: '4096',
      FRONTEND_BATCH_MAX_EVENTS: '5',
      FRONTEND_RATE_LIMIT_PER_MINUTE: '0',
      TRUSTED_PROXIES: '10.0.0.0/8',
    });
  });
  afterAll(async () => {
    await t.close();
  });

  it('accepts one event once it is stored, with what the server saw in its metadata', async () => {
    const type = uid('button_click');
    const res = await send(
      t,
      FRONTEND,
      {
        event_type: type,
        category: 'user_interaction',
        page_url: 'https://app.example.com/dashboard',
        user_id: 'user_123',
        session_id: 'sess_abc',
        data: { button_id: 'submit_form' },
        metadata: { device: 'desktop', client_ip: '6.6.6.6' },
      },
      {
        headers: { 'user-agent': 'Mozilla/5.0 (test)', referer: 'https://app.example.com/' },
        remoteAddress: '203.0.113.9',
      },
    );
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<Accepted>();
    expect(body).toEqual({ status: 'accepted', event_id: body.event_id, message: 'Event stored' });
    const event = await stored(t, body.event_id);
    expect(event).toMatchObject({
      event_type: type,
      event_source: 'frontend',
      event_category: 'user_action',
      user_id: 'user_123',
      session_id: 'sess_abc',
      data: { button_id: 'submit_form' },
      metadata: {
        device: 'desktop',
        category: 'user_interaction',
        page_url: 'https://app.example.com/dashboard',
        client_ip: '203.0.113.9',
        user_agent: 'Mozilla/5.0 (test)',
        referer: 'https://app.example.com/',
        ingest_channel: 'frontend',
      },
    });
  });

  it('takes the client timestamp and keeps unknown fields', async () => {
    const res = await send(t, FRONTEND, {
      event_type: 'page_view',
      timestamp: '2026-01-01T00:00:00Z',
      anonymous_id: 'anon-1',
    });
    expect(res.statusCode, res.body).toBe(200);
    const event = await stored(t, res.json<Accepted>().event_id);
    expect(event.timestamp).toBe('2026-01-01T00:00:00.000Z');
    expect(event.event_category).toBe('page_view');
    expect(event.metadata.extra_fields).toEqual({ anonymous_id: 'anon-1' });
  });

  it('stores a retried request with a client event_id once', async () => {
    const eventId = uid('client-evt');
    const body = { event_type: 'signup_form', event_id: eventId, timestamp: '2026-02-01T00:00:00Z' };
    const first = await send(t, FRONTEND, body, { remoteAddress: '198.51.100.1' });
    const again = await send(t, FRONTEND, body, { remoteAddress: '198.51.100.1' });
    expect([first.statusCode, again.statusCode]).toEqual([200, 200]);
    expect(again.json<Accepted>().event_id).toBe(eventId);
    const page = await send(t, '/api/v1/events/query', { event_type: 'signup_form' });
    expect(page.json<{ events: EventJson[] }>().events.filter((e) => e.event_id === eventId)).toHaveLength(1);
  });

  it('accepts a batch, merging client_info into each event', async () => {
    const type = uid('batch_evt');
    const res = await send(t, `${FRONTEND}/batch`, {
      events: [
        { event_type: type, category: 'click', metadata: { locale: 'fr' } },
        { event_type: type, category: 'form' },
      ],
      client_info: { locale: 'en', app_version: '1.2.3', client_ip: '6.6.6.6' },
    });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<BatchAccepted>();
    expect(body).toMatchObject({ status: 'accepted', count: 2 });
    expect(body.event_ids).toHaveLength(2);
    const [a, b] = await Promise.all(body.event_ids.map((id) => stored(t, id)));
    expect(a!.event_category).toBe('click');
    expect(a!.metadata).toMatchObject({ locale: 'fr', app_version: '1.2.3', client_ip: '127.0.0.1' });
    expect(b!.event_category).toBe('form_submit');
    expect(b!.metadata).toMatchObject({ locale: 'en', app_version: '1.2.3', client_ip: '127.0.0.1' });
  });

  it('accepts navigator.sendBeacon bodies (text/plain JSON) here and nowhere else', async () => {
    const beacon = { 'content-type': 'text/plain;charset=UTF-8' };
    const single = await send(t, FRONTEND, { event_type: 'page_hidden' }, { headers: beacon });
    expect(single.statusCode, single.body).toBe(200);
    await stored(t, single.json<Accepted>().event_id);
    const batch = await send(t, `${FRONTEND}/batch`, { events: [{ event_type: 'a' }] }, { headers: beacon });
    expect(batch.statusCode, batch.body).toBe(200);
    const bad = await send(t, FRONTEND, '{"event_type": ', { headers: beacon });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<ErrorJson>().code).toBe('malformed_json');
    const elsewhere = await send(t, '/api/v1/events/create', { event_type: 'x' }, { headers: beacon });
    expect(elsewhere.statusCode).toBe(415);
    const form = await send(t, FRONTEND, 'a=b', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.statusCode).toBe(415);
  });

  it('answers CORS preflights for both paths and adds CORS headers to answers', async () => {
    for (const url of [FRONTEND, `${FRONTEND}/batch`]) {
      const preflight = await t.app.http.inject({
        method: 'OPTIONS',
        url,
        headers: {
          origin: 'https://shop.example.com',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type',
        },
      });
      expect(preflight.statusCode, url).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBe('*');
      expect(String(preflight.headers['access-control-allow-methods'])).toContain('POST');
      expect(String(preflight.headers['access-control-allow-headers'])).toContain('content-type');
    }
    const res = await send(
      t,
      FRONTEND,
      { event_type: 'cors_check' },
      { headers: { origin: 'https://shop.example.com' } },
    );
    expect(res.statusCode).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    // Only the collector is open to browsers.
    const other = await t.app.http.inject({
      method: 'GET',
      url: '/health',
      headers: { origin: 'https://shop.example.com' },
    });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('refuses bodies over the limit, too many events and invalid events', async () => {
    const big = await send(t, FRONTEND, { event_type: 'x', data: { pad: 'x'.repeat(5000) } });
    expect(big.statusCode).toBe(413);
    const bigBeacon = await send(
      t,
      FRONTEND,
      { event_type: 'x', data: { pad: 'x'.repeat(5000) } },
      { headers: { 'content-type': 'text/plain' } },
    );
    expect(bigBeacon.statusCode).toBe(413);
    const many = await send(t, `${FRONTEND}/batch`, {
      events: Array.from({ length: 6 }, () => ({ event_type: 'x' })),
    });
    expect(many.statusCode).toBe(422);
    expect(many.json<ErrorJson>().errors?.map((e) => e.path)).toEqual(['body.events']);
    const empty = await send(t, `${FRONTEND}/batch`, { events: [] });
    expect(empty.statusCode).toBe(422);
    const invalid = await send(t, `${FRONTEND}/batch`, {
      events: [{ event_type: 'ok' }, { data: {} }, { event_type: 'x', timestamp: 'yesterday' }],
    });
    expect(invalid.statusCode).toBe(422);
    expect(
      invalid
        .json<ErrorJson>()
        .errors?.map((e) => e.path)
        .sort(),
    ).toEqual(['body.events[1].event_type', 'body.events[2].timestamp']);
    const nul = await send(t, FRONTEND, { event_type: 'x', data: { a: 'b\u0000' } });
    expect(nul.statusCode).toBe(422);
    expect(nul.json<ErrorJson>().errors?.[0]?.path).toBe('body.data.a');
  });

  it('believes X-Forwarded-For only from trusted proxies', async () => {
    const viaProxy = await send(
      t,
      FRONTEND,
      { event_type: 'xff' },
      { headers: { 'x-forwarded-for': '6.6.6.6, 198.51.100.20, 10.1.1.1' }, remoteAddress: '10.0.0.1' },
    );
    expect((await stored(t, viaProxy.json<Accepted>().event_id)).metadata.client_ip).toBe('198.51.100.20');
    const direct = await send(
      t,
      FRONTEND,
      { event_type: 'xff' },
      { headers: { 'x-forwarded-for': '198.51.100.20' }, remoteAddress: '203.0.113.50' },
    );
    expect((await stored(t, direct.json<Accepted>().event_id)).metadata.client_ip).toBe('203.0.113.50');
  });

  it('reports its health', async () => {
    const res = await get(t, `${FRONTEND}/health`);
    expect(res.statusCode).toBe(200);
    const body = res.json<Record<string, unknown>>();
    expect(body).toMatchObject({
      status: 'healthy',
      service: 'frontend-event-collection',
      nats_connected: false,
    });
    expect(Number.isNaN(Date.parse(String(body.timestamp)))).toBe(false);
  });

  it('is documented in OpenAPI', async () => {
    const doc = (await get(t, '/docs/json')).json<{ paths: Record<string, Record<string, unknown>> }>();
    expect(Object.keys(doc.paths[FRONTEND] ?? {})).toContain('post');
    expect(Object.keys(doc.paths[`${FRONTEND}/batch`] ?? {})).toContain('post');
    expect(Object.keys(doc.paths[`${FRONTEND}/health`] ?? {})).toContain('get');
    expect(Object.keys(doc.paths['/api/v1/events/dead-letters'] ?? {})).toContain('get');
  });
});

describe('frontend collector rate limit', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp('pglite', { FRONTEND_RATE_LIMIT_PER_MINUTE: '3', TRUSTED_PROXIES: '10.0.0.1' });
  });
  afterAll(async () => {
    await t.close();
  });

  it('answers 429 with Retry-After past the limit, per client IP', async () => {
    const from = (ip: string, headers: Record<string, string> = {}) =>
      send(t, FRONTEND, { event_type: 'limited' }, { remoteAddress: ip, headers });
    for (let i = 0; i < 3; i++) expect((await from('198.51.100.1')).statusCode).toBe(200);
    const limited = await from('198.51.100.1', { origin: 'https://shop.example.com' });
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(limited.headers['access-control-allow-origin']).toBe('*');
    expect(limited.json<ErrorJson>()).toMatchObject({ code: 'rate_limited' });
    // the batch route shares the client's budget
    const batch = await send(
      t,
      `${FRONTEND}/batch`,
      { events: [{ event_type: 'x' }] },
      { remoteAddress: '198.51.100.1' },
    );
    expect(batch.statusCode).toBe(429);

    // another client is not affected
    expect((await from('198.51.100.2')).statusCode).toBe(200);
    // a client cannot escape by writing X-Forwarded-For itself
    expect((await from('198.51.100.1', { 'x-forwarded-for': '1.2.3.4' })).statusCode).toBe(429);
    // behind the trusted proxy, each forwarded client has its own budget
    for (let i = 0; i < 3; i++)
      expect((await from('10.0.0.1', { 'x-forwarded-for': '192.0.2.1' })).statusCode).toBe(200);
    expect((await from('10.0.0.1', { 'x-forwarded-for': '192.0.2.1' })).statusCode).toBe(429);
    expect((await from('10.0.0.1', { 'x-forwarded-for': '192.0.2.2' })).statusCode).toBe(200);
    // health is not limited
    for (let i = 0; i < 5; i++) {
      const health = await t.app.http.inject({
        method: 'GET',
        url: `${FRONTEND}/health`,
        remoteAddress: '198.51.100.1',
      });
      expect(health.statusCode).toBe(200);
    }
  });
});
