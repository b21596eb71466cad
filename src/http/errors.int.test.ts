import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, packageVersion, type App } from '../app.js';
import { loadConfig } from '../config.js';
import { createEventStore, type EventStore } from '../store/index.js';
import { createPgDb } from '../store/pg.js';
import { createMemoryBus } from '../bus/memory.js';
import { createPgliteDb } from '../store/pglite.js';
import {
  STORE_KINDS,
  startTestApp,
  TEST_ADMIN_API_KEY,
  withAdminKey,
  type TestApp,
} from '../test-support/app.js';
import { createTestDatabase, type TestDatabase } from '../test-support/db.js';
import { STACK_TRACE, uid, type ErrorJson, type EventJson } from '../test-support/http.js';
import { TcpProxy, throughProxy } from '../test-support/tcp-proxy.js';
import type { Db } from '../store/db.js';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** Every response body seen in this file: none may carry a stack trace. */
const seen: { what: string; body: string }[] = [];

async function send(app: App, options: InjectOptions & { url: string }): Promise<LightMyRequestResponse> {
  // Some of these apps are built without startTestApp: the admin key is added here.
  const res = await app.http.inject(withAdminKey(options));
  seen.push({ what: `${options.method ?? 'GET'} ${options.url} → ${res.statusCode}`, body: res.body });
  return res;
}

function expectNoStackTrace(res: LightMyRequestResponse): void {
  expect(res.body).not.toMatch(STACK_TRACE);
  expect(res.body).not.toMatch(/"stack"/);
  expect(res.body).not.toMatch(/node_modules|\/src\/.*\.ts/);
}

function expectError(res: LightMyRequestResponse, status: number, code: string): ErrorJson {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json<ErrorJson>();
  expect(body.code).toBe(code);
  expect(typeof body.detail).toBe('string');
  expect(body.detail.length).toBeGreaterThan(0);
  expectNoStackTrace(res);
  return body;
}

describe.each(STORE_KINDS)('HTTP errors, health and docs (%s)', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(kind, { BODY_LIMIT_BYTES: '2048' });
  });
  afterAll(async () => {
    await t?.close();
  });

  const json = (url: string, payload: string, method: 'POST' | 'GET' = 'POST') =>
    send(t.app, { method, url, payload, headers: { 'content-type': 'application/json' } });

  it.each(['/api/v1/events/create', '/api/v1/events/batch', '/api/v1/events/query'])(
    'answers malformed JSON to %s with 400 malformed_json',
    async (url) => {
      for (const payload of [
        '{"event_type": ',
        '{event_type: "x"}',
        "{'a': 1}",
        '[1, 2',
        'nul',
        '{"a":1}}',
      ]) {
        expectError(await json(url, payload), 400, 'malformed_json');
      }
    },
  );

  it('answers an empty JSON body with 400 malformed_json', async () => {
    expectError(await json('/api/v1/events/create', ''), 400, 'malformed_json');
  });

  it('answers a body over BODY_LIMIT_BYTES with 413 and stores nothing', async () => {
    const userId = uid('user');
    const big = JSON.stringify({ event_type: 'big', user_id: userId, data: { blob: 'x'.repeat(3000) } });
    expectError(await json('/api/v1/events/create', big), 413, 'body_too_large');
    const batch = JSON.stringify([{ event_type: 'big', user_id: userId, data: { blob: 'x'.repeat(3000) } }]);
    expectError(await json('/api/v1/events/batch', batch), 413, 'body_too_large');
    // just under the limit is fine
    const small = JSON.stringify({ event_type: 'small', user_id: userId, data: { blob: 'x'.repeat(1800) } });
    expect(small.length).toBeLessThan(2048);
    expect((await json('/api/v1/events/create', small)).statusCode).toBe(201);
    const query = await json('/api/v1/events/query', JSON.stringify({ user_id: userId }));
    expect(query.json<{ total: number }>().total).toBe(1);
  });

  it('answers a body of another content type with 415', async () => {
    for (const contentType of ['text/plain', 'application/xml', 'application/x-www-form-urlencoded']) {
      const res = await send(t.app, {
        method: 'POST',
        url: '/api/v1/events/create',
        payload: 'event_type=x',
        headers: { 'content-type': contentType },
      });
      expectError(res, 415, 'unsupported_media_type');
    }
  });

  it('accepts application/json with a charset', async () => {
    const res = await send(t.app, {
      method: 'POST',
      url: '/api/v1/events/create',
      payload: JSON.stringify({ event_type: 'charset' }),
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    expect(res.statusCode).toBe(201);
  });

  it('answers an unknown route with 404', async () => {
    for (const [method, url] of [
      ['GET', '/nope'],
      ['GET', '/api/v1/nothing/here?x=1'],
      ['POST', '/api/v1/events'],
      ['DELETE', '/api/v1/events/create'],
      ['PUT', '/health'],
    ] as const) {
      const body = expectError(await send(t.app, { method, url }), 404, 'route_not_found');
      expect(body.detail).toBe(`Route ${method} ${url.split('?')[0]} not found`);
    }
  });

  it('answers a URL that is not valid percent-encoding with 400 in the error shape', async () => {
    expectError(await send(t.app, { method: 'GET', url: '/api/v1/events/%E0%A4%A' }), 400, 'bad_request');
  });

  it('answers an over-long path parameter with 414 in the error shape', async () => {
    const res = await send(t.app, { method: 'GET', url: `/api/v1/events/${'x'.repeat(5000)}` });
    expect(res.statusCode).toBe(414);
    const body = res.json<ErrorJson>();
    expect(typeof body.code).toBe('string');
    expect(typeof body.detail).toBe('string');
    expectNoStackTrace(res);
  });

  it.each(['/health', '/'])('GET %s answers liveness', async (url) => {
    const res = await send(t.app, { method: 'GET', url });
    expect(res.statusCode).toBe(200);
    const body = res.json<Record<string, unknown>>();
    expect(Object.keys(body).sort()).toEqual(['service', 'status', 'timestamp', 'version']);
    expect(body).toMatchObject({ status: 'healthy', service: 'event_service', version: packageVersion() });
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(body.timestamp).toMatch(ISO);
    expect(Math.abs(Date.parse(body.timestamp as string) - Date.now())).toBeLessThan(60_000);
  });

  it('GET /health/ready answers 200 with checks.store ok', async () => {
    const res = await send(t.app, { method: 'GET', url: '/health/ready' });
    expect(res.statusCode).toBe(200);
    const body = res.json<{
      status: string;
      checks: Record<string, { status: string }>;
      timestamp: string;
    }>();
    expect(body.status).toBe('ready');
    expect(body.checks.store).toEqual({ status: 'ok' });
    expect(body.timestamp).toMatch(ISO);
  });

  it('GET /docs/json is an OpenAPI 3.1 document listing every route', async () => {
    const res = await send(t.app, { method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json<{
      openapi: string;
      info: { title: string; version: string };
      paths: Record<string, Record<string, { requestBody?: unknown; responses?: Record<string, unknown> }>>;
    }>();
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.info.version).toBe(packageVersion());
    const routes: [string, string, string][] = [
      ['post', '/api/v1/events/create', '201'],
      ['post', '/api/v1/events/batch', '201'],
      ['get', '/api/v1/events/{event_id}', '200'],
      ['post', '/api/v1/events/query', '200'],
      ['get', '/api/v1/events/statistics', '200'],
      ['get', '/api/v1/events/stream/{stream_id}', '200'],
      ['get', '/health', '200'],
      ['get', '/health/ready', '200'],
    ];
    for (const [method, path, status] of routes) {
      const operation = doc.paths[path]?.[method];
      expect(operation, `${method} ${path}`).toBeDefined();
      expect(operation!.responses?.[status], `${method} ${path} ${status}`).toBeDefined();
    }
    expect(doc.paths['/api/v1/events/create']!.post!.requestBody).toBeDefined();
    expect(doc.paths['/api/v1/events/batch']!.post!.responses?.['207']).toBeDefined();
    expect(doc.paths['/api/v1/events/create']!.post!.responses?.['409']).toBeDefined();
    const ui = await send(t.app, { method: 'GET', url: '/docs' });
    expect(ui.statusCode).toBeLessThan(400);
  });
});

describe.each(STORE_KINDS)('a store that is closed (%s)', (kind) => {
  let app: App;
  let database: TestDatabase | undefined;
  beforeAll(async () => {
    let db: Db;
    if (kind === 'postgres') {
      database = await createTestDatabase();
      db = createPgDb({ connectionString: database.url, poolSize: 2, statementTimeoutMs: 10_000 });
    } else {
      db = await createPgliteDb(undefined);
    }
    app = await buildApp({
      config: loadConfig({ LOG_LEVEL: 'silent', ADMIN_API_KEY: TEST_ADMIN_API_KEY }),
      store: createEventStore(db),
      bus: createMemoryBus(),
      logger: false,
    });
    await app.http.ready();
    await db.close();
  });
  afterAll(async () => {
    await app?.http.close();
    await database?.drop();
  });

  it('answers server errors in the error shape without a stack trace', async () => {
    for (const options of [
      { method: 'POST', url: '/api/v1/events/create', payload: { event_type: 'x' } },
      { method: 'GET', url: '/api/v1/events/some-id' },
      { method: 'POST', url: '/api/v1/events/query', payload: {} },
      { method: 'GET', url: '/api/v1/events/statistics' },
    ] as (InjectOptions & { url: string })[]) {
      const res = await send(app, options);
      expect(res.statusCode, res.body).toBeGreaterThanOrEqual(500);
      const body = res.json<ErrorJson>();
      expect(typeof body.code).toBe('string');
      expect(typeof body.detail).toBe('string');
      expectNoStackTrace(res);
    }
    const ready = await send(app, { method: 'GET', url: '/health/ready' });
    expect(ready.statusCode).toBe(503);
  });
});

describe('PostgreSQL outage (postgres)', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let db: Db;
  let store: EventStore;
  let app: App;

  beforeAll(async () => {
    database = await createTestDatabase();
    const target = new URL(database.url);
    proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.start();
    db = createPgDb({
      connectionString: throughProxy(database.url, proxy),
      poolSize: 4,
      statementTimeoutMs: 10_000,
    });
    store = createEventStore(db);
    app = await buildApp({
      config: loadConfig({ LOG_LEVEL: 'silent', ADMIN_API_KEY: TEST_ADMIN_API_KEY }),
      store,
      bus: createMemoryBus(),
      logger: false,
    });
    await app.http.ready();
  });
  afterAll(async () => {
    await app?.http.close();
    await store?.drain();
    await db?.close();
    await proxy?.close();
    await database?.drop();
  });

  const create = (body: Record<string, unknown>) =>
    send(app, { method: 'POST', url: '/api/v1/events/create', payload: body });

  function expectUnavailable(res: LightMyRequestResponse): void {
    expectError(res, 503, 'store_unavailable');
    expect(res.headers['retry-after']).toBe('1');
  }

  it('answers 503 while PostgreSQL is unreachable and recovers without a restart', async () => {
    const streamId = `outage:${uid('s')}`;
    const before = await create({ event_type: 'before', stream_id: streamId });
    expect(before.statusCode).toBe(201);
    const stored = before.json<EventJson>();
    expect((await send(app, { method: 'GET', url: '/health/ready' })).statusCode).toBe(200);
    // several pooled connections exist when the outage starts
    await Promise.all(
      Array.from({ length: 4 }, () =>
        send(app, { method: 'POST', url: '/api/v1/events/query', payload: {} }),
      ),
    );
    expect(proxy.connections).toBeGreaterThan(0);

    await proxy.pause();

    expectUnavailable(await create({ event_type: 'during', stream_id: streamId }));
    expectUnavailable(await create({ event_type: 'during' }));
    expectUnavailable(
      await send(app, { method: 'POST', url: '/api/v1/events/batch', payload: [{ event_type: 'during' }] }),
    );
    expectUnavailable(
      await send(app, {
        method: 'POST',
        url: '/api/v1/events/batch?partial=true',
        payload: [{ event_type: 'during' }],
      }),
    );
    expectUnavailable(await send(app, { method: 'GET', url: `/api/v1/events/${stored.event_id}` }));
    expectUnavailable(await send(app, { method: 'POST', url: '/api/v1/events/query', payload: {} }));
    expectUnavailable(await send(app, { method: 'GET', url: '/api/v1/events/statistics' }));
    expectUnavailable(
      await send(app, { method: 'GET', url: `/api/v1/events/stream/${encodeURIComponent(streamId)}` }),
    );
    const ready = await send(app, { method: 'GET', url: '/health/ready' });
    expect(ready.statusCode).toBe(503);
    const readyBody = ready.json<{
      status: string;
      checks: Record<string, { status: string; error?: string }>;
    }>();
    expect(readyBody.status).toBe('not_ready');
    expect(readyBody.checks.store!.status).toBe('down');
    expectNoStackTrace(ready);
    // liveness does not depend on the store
    expect((await send(app, { method: 'GET', url: '/health' })).statusCode).toBe(200);

    await proxy.resume();

    const after = await create({ event_type: 'after', stream_id: streamId });
    expect(after.statusCode, after.body).toBe(201);
    // nothing from the outage was stored: the stream continues at 2
    expect(after.json<EventJson>().stream_version).toBe(2);
    expect((await send(app, { method: 'GET', url: '/health/ready' })).statusCode).toBe(200);
    const read = await send(app, { method: 'GET', url: `/api/v1/events/${stored.event_id}` });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toEqual(stored);
  });

  it('survives a second outage the same way', async () => {
    await proxy.pause();
    expectUnavailable(await create({ event_type: 'during' }));
    expect((await send(app, { method: 'GET', url: '/health/ready' })).statusCode).toBe(503);
    await proxy.resume();
    expect((await create({ event_type: 'after' })).statusCode).toBe(201);
    expect((await send(app, { method: 'GET', url: '/health/ready' })).statusCode).toBe(200);
  });
});

describe('responses of this file', () => {
  it('never contain a stack trace', () => {
    expect(seen.length).toBeGreaterThan(30);
    const leaks = seen.filter(({ body }) => STACK_TRACE.test(body) || /"stack"/.test(body));
    expect(leaks.map((l) => l.what)).toEqual([]);
  });
});
