/**
 * Authentication, authorization by user and rate limits over HTTP, on both stores: the matrix of
 * every registered route against every kind of credential, key management, the first-start key,
 * JWTs (shared secret and JWKS), user isolation and rate limits.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_KINDS, startTestApp, TEST_ADMIN_API_KEY, type TestApp } from '../test-support/app.js';
import { createTestDatabase, openTestDb } from '../test-support/db.js';
import { uid, type EventJson } from '../test-support/http.js';
import { freePort, ServiceProcess } from '../test-support/service-process.js';
import { createAuthenticator } from './authenticator.js';
import { ensureAdminKey } from './bootstrap.js';
import { Access } from './policy.js';

const ADMIN = TEST_ADMIN_API_KEY;

interface Call {
  method: string;
  url: string;
  token?: string;
  payload?: unknown;
  remoteAddress?: string;
}

function call(
  t: TestApp,
  { method, url, token, payload, remoteAddress }: Call,
): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (payload !== undefined) headers['content-type'] = 'application/json';
  return t.app.http.inject({
    method: method as 'GET',
    url,
    headers,
    payload: payload === undefined ? undefined : JSON.stringify(payload),
    remoteAddress,
  });
}

async function createKey(
  t: TestApp,
  body: Record<string, unknown>,
): Promise<{ key: string; key_id: string }> {
  const res = await call(t, { method: 'POST', url: '/api/v1/auth/keys', token: ADMIN, payload: body });
  expect(res.statusCode, res.body).toBe(201);
  return res.json<{ key: string; key_id: string }>();
}

const NO_LIMITS = { RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_IP_PER_MINUTE: '0' };

/** Our own 401: the API's challenge, not the tracking API's Basic one. */
function isBearer401(res: LightMyRequestResponse): boolean {
  return (
    res.statusCode === 401 &&
    String(res.headers['www-authenticate'] ?? '').startsWith('Bearer') &&
    // HEAD answers have no body.
    (res.body === '' || res.json<{ code: string }>().code === 'unauthorized')
  );
}

describe.each(STORE_KINDS)('authentication (%s)', (kind) => {
  let t: TestApp;
  let readKey: string;
  let writeKey: string;
  let userKey: string;
  beforeAll(async () => {
    t = await startTestApp(kind, NO_LIMITS, { defaultAuth: false });
    readKey = (await createKey(t, { name: 'reader', scopes: ['events:read'] })).key;
    writeKey = (await createKey(t, { name: 'writer', scopes: ['events:write'] })).key;
    userKey = (await createKey(t, { name: 'u', scopes: ['events:read', 'events:write'], user_id: 'u-m' }))
      .key;
  });
  afterAll(async () => {
    await t.close();
  });

  it('has an explicit policy entry for every registered route', () => {
    const routes = t.app.http.routeAccess;
    expect(routes.length).toBeGreaterThan(60);
    expect(routes.filter((route) => !route.explicit)).toEqual([]);
  });

  it('answers every route as its policy says, for every kind of credential', async () => {
    const allowed = (scopes: string[], access: Access) =>
      access === Access.Public ||
      access === Access.Authenticated ||
      scopes.includes('admin') ||
      scopes.includes(access);
    const credentials: { name: string; token?: string; scopes: string[] | null }[] = [
      { name: 'none', scopes: null },
      { name: 'wrong', token: 'esk_000000000000_wrongwrongwrongwrongwrongwrongwrongwrongwro', scopes: null },
      { name: 'wrong jwt', token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln', scopes: null },
      { name: 'read', token: readKey, scopes: ['events:read'] },
      { name: 'write', token: writeKey, scopes: ['events:write'] },
      { name: 'user-bound', token: userKey, scopes: ['events:read', 'events:write'] },
      { name: 'admin', token: ADMIN, scopes: ['admin'] },
    ];
    const problems: string[] = [];
    for (const route of t.app.http.routeAccess) {
      const url = route.url.replace(/:[a-z_]+/g, 'no-such-id').replace(/\*$/, 'x');
      const payload = ['POST', 'PUT'].includes(route.method) ? {} : undefined;
      for (const credential of credentials) {
        const res = await call(t, { method: route.method, url, token: credential.token, payload });
        const where = `${route.method} ${route.url} (${route.access}) as ${credential.name}: ${res.statusCode} ${res.body.slice(0, 120)}`;
        if (route.access === Access.Public) {
          if (isBearer401(res) || res.statusCode === 403) problems.push(where);
        } else if (credential.scopes === null) {
          if (!isBearer401(res)) problems.push(where);
        } else if (allowed(credential.scopes, route.access)) {
          if (res.statusCode === 401 || res.statusCode === 403) problems.push(where);
        } else if (
          res.statusCode !== 403 ||
          (res.body !== '' && res.json<{ code: string }>().code !== 'forbidden')
        ) {
          problems.push(where);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('says who a credential is', async () => {
    const admin = await call(t, { method: 'GET', url: '/api/v1/auth/whoami', token: ADMIN });
    expect(admin.json()).toEqual({
      principal: 'env:ADMIN_API_KEY',
      kind: 'api_key',
      scopes: ['admin'],
      user_id: null,
    });
    const user = await call(t, { method: 'GET', url: '/api/v1/auth/whoami', token: userKey });
    expect(user.json()).toMatchObject({ kind: 'api_key', user_id: 'u-m' });
    expect(user.json<{ principal: string }>().principal).toMatch(/^key:[0-9a-f]{12}$/);
  });

  it('answers 401 with a Bearer challenge and the usual error body', async () => {
    const missing = await call(t, { method: 'POST', url: '/api/v1/events/query', payload: {} });
    expect(missing.statusCode).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="event-service"');
    expect(missing.json()).toEqual({
      detail: expect.stringMatching(/Missing credential/),
      code: 'unauthorized',
    });
    const wrong = await call(t, { method: 'POST', url: '/api/v1/events/query', token: 'nope', payload: {} });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.headers['www-authenticate']).toBe('Bearer realm="event-service", error="invalid_token"');
    const basic = await t.app.http.inject({
      method: 'GET',
      url: '/api/v1/events/statistics',
      headers: { authorization: `Basic ${Buffer.from(`${ADMIN}:`).toString('base64')}` },
    });
    expect(basic.statusCode).toBe(401);
    const forbidden = await call(t, {
      method: 'POST',
      url: '/api/v1/events/create',
      token: readKey,
      payload: {},
    });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json()).toEqual({
      detail: 'This credential lacks the scope events:write',
      code: 'forbidden',
    });
  });

  it('creates keys (shown once), lists them without the key, and revokes them', async () => {
    const created = await createKey(t, { name: 'temp', scopes: ['events:read'] });
    expect(created.key).toMatch(/^esk_[0-9a-f]{12}_/);
    expect(created.key.slice(4, 16)).toBe(created.key_id);
    const before = await call(t, { method: 'GET', url: '/api/v1/events/statistics', token: created.key });
    expect(before.statusCode).toBe(200);

    const list = await call(t, { method: 'GET', url: '/api/v1/auth/keys', token: ADMIN });
    expect(list.statusCode).toBe(200);
    expect(list.body).not.toContain(created.key);
    expect(list.body).not.toContain('key_hash');
    const listed = list.json<{ keys: { key_id: string; name: string; scopes: string[] }[] }>().keys;
    expect(listed.find((key) => key.key_id === created.key_id)).toMatchObject({
      name: 'temp',
      scopes: ['events:read'],
    });

    const revoked = await call(t, {
      method: 'DELETE',
      url: `/api/v1/auth/keys/${created.key_id}`,
      token: ADMIN,
    });
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json<{ revoked_at: string | null }>().revoked_at).not.toBeNull();
    // Cached a moment ago, and still refused at once on this instance.
    const after = await call(t, { method: 'GET', url: '/api/v1/events/statistics', token: created.key });
    expect(isBearer401(after)).toBe(true);
    const active = await call(t, { method: 'GET', url: '/api/v1/auth/keys', token: ADMIN });
    expect(active.json<{ keys: { key_id: string }[] }>().keys.map((k) => k.key_id)).not.toContain(
      created.key_id,
    );
    const all = await call(t, { method: 'GET', url: '/api/v1/auth/keys?include_revoked=true', token: ADMIN });
    expect(all.json<{ keys: { key_id: string }[] }>().keys.map((k) => k.key_id)).toContain(created.key_id);
    const unknown = await call(t, { method: 'DELETE', url: '/api/v1/auth/keys/000000000000', token: ADMIN });
    expect(unknown.statusCode).toBe(404);
  });

  it('refuses admin keys bound to a user and expiry in the past; honours expiry', async () => {
    const bound = await call(t, {
      method: 'POST',
      url: '/api/v1/auth/keys',
      token: ADMIN,
      payload: { name: 'x', scopes: ['admin'], user_id: 'u' },
    });
    expect(bound.statusCode).toBe(422);
    const past = await call(t, {
      method: 'POST',
      url: '/api/v1/auth/keys',
      token: ADMIN,
      payload: { name: 'x', scopes: ['events:read'], expires_at: '2000-01-01T00:00:00Z' },
    });
    expect(past.statusCode).toBe(422);
    const soon = await createKey(t, {
      name: 'soon',
      scopes: ['events:read'],
      expires_at: new Date(Date.now() + 1500).toISOString(),
    });
    expect(
      (await call(t, { method: 'GET', url: '/api/v1/events/statistics', token: soon.key })).statusCode,
    ).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1600));
    expect(
      isBearer401(await call(t, { method: 'GET', url: '/api/v1/events/statistics', token: soon.key })),
    ).toBe(true);
  });

  it('documents the bearer scheme in OpenAPI, per route', async () => {
    const doc = (await call(t, { method: 'GET', url: '/docs/json' })).json<{
      components: { securitySchemes: Record<string, { scheme: string }> };
      paths: Record<string, Record<string, { security?: unknown[] }>>;
    }>();
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.paths['/api/v1/events/create']!.post!.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths['/health']!.get!.security).toEqual([]);
    expect(doc.paths['/api/v1/events/frontend']!.post!.security).toEqual([]);
  });
});

describe.each(STORE_KINDS)('the first-start admin key (%s)', (kind) => {
  it('is generated once, when no key is configured and none exists, even by instances starting together', async () => {
    const opened = await openTestDb(kind);
    try {
      expect(await ensureAdminKey(opened.db, ADMIN)).toEqual({ type: 'configured' });
      const outcomes = await Promise.all([1, 2, 3, 4].map(() => ensureAdminKey(opened.db, undefined)));
      const generated = outcomes.filter((outcome) => outcome.type === 'generated');
      expect(generated).toHaveLength(1);
      expect(outcomes.filter((outcome) => outcome.type === 'exists')).toHaveLength(3);
      expect(await ensureAdminKey(opened.db, undefined)).toEqual({ type: 'exists' });
      const first = generated[0] as { key: string; keyId: string };
      const authenticator = createAuthenticator({ db: opened.db, cacheTtlMs: 1000, cacheMaxEntries: 10 });
      const principal = await authenticator.authenticate(first.key);
      expect(principal).toMatchObject({ id: `key:${first.keyId}`, userId: null });
      expect([...principal!.scopes]).toEqual(['admin']);
    } finally {
      await opened.close();
    }
  });
});

describe('the first start of the service', () => {
  it('prints the generated admin key once, and it works', async () => {
    const database = await createTestDatabase();
    const env = { DATABASE_URL: database.url, ADMIN_API_KEY: '', LOG_LEVEL: 'warn' };
    let service = await ServiceProcess.start(env);
    try {
      const printed = /\n {4}(esk_[0-9a-f]{12}_[A-Za-z0-9_-]{43})\n/.exec(service.output);
      expect(printed, service.output).not.toBeNull();
      const res = await fetch(`${service.url}/api/v1/auth/keys`, {
        headers: { authorization: `Bearer ${printed![1]}` },
      });
      expect(res.status).toBe(200);
      await service.stop();
      service = await ServiceProcess.start(env);
      expect(service.output).not.toContain('esk_');
    } finally {
      await service.stop();
      await database.drop();
    }
  });
});

describe.each(STORE_KINDS)('authorization by user (%s)', (kind) => {
  let t: TestApp;
  let alice: string;
  let bob: string;
  const entity = uid('order');
  beforeAll(async () => {
    t = await startTestApp(kind, NO_LIMITS, { defaultAuth: false });
    alice = (await createKey(t, { name: 'alice', scopes: ['events:read', 'events:write'], user_id: 'alice' }))
      .key;
    bob = (await createKey(t, { name: 'bob', scopes: ['events:read', 'events:write'], user_id: 'bob' })).key;
  });
  afterAll(async () => {
    await t.close();
  });

  const create = async (token: string, body: Record<string, unknown>) => {
    const res = await call(t, { method: 'POST', url: '/api/v1/events/create', token, payload: body });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<EventJson>();
  };

  it('writes as the bound user only', async () => {
    const own = await create(alice, { event_type: 'note.added', data: {} });
    expect(own.user_id).toBe('alice');
    const other = await call(t, {
      method: 'POST',
      url: '/api/v1/events/create',
      token: alice,
      payload: { event_type: 'note.added', user_id: 'bob' },
    });
    expect(other.statusCode).toBe(403);
    expect(other.json<{ code: string }>().code).toBe('forbidden');
    const batch = await call(t, {
      method: 'POST',
      url: '/api/v1/events/batch',
      token: alice,
      payload: [{ event_type: 'a' }, { event_type: 'b', user_id: 'bob' }],
    });
    expect(batch.statusCode).toBe(403);
    expect(batch.json<{ detail: string }>().detail).toMatch(/^body\[1\]\.user_id/);
    const partial = await call(t, {
      method: 'POST',
      url: '/api/v1/events/batch?partial=true',
      token: alice,
      payload: [{ event_type: 'a' }, { event_type: 'b', user_id: 'bob' }],
    });
    expect(partial.statusCode).toBe(207);
    const results = partial.json<{ results: { status: number; event?: EventJson }[] }>().results;
    expect(results.map((r) => r.status)).toEqual([201, 403]);
    expect(results[0]!.event!.user_id).toBe('alice');
  });

  it('reads only the bound user’s events: another user’s is not found', async () => {
    const mine = await create(alice, { event_type: 'secret.kept', data: { s: 1 } });
    const theirs = await call(t, { method: 'GET', url: `/api/v1/events/${mine.event_id}`, token: bob });
    const unknown = await call(t, { method: 'GET', url: '/api/v1/events/no-such-event', token: bob });
    expect(theirs.statusCode).toBe(404);
    expect(theirs.json<{ code: string }>().code).toBe(unknown.json<{ code: string }>().code);
    expect(
      (await call(t, { method: 'GET', url: `/api/v1/events/${mine.event_id}`, token: alice })).statusCode,
    ).toBe(200);
    expect(
      (await call(t, { method: 'GET', url: `/api/v1/events/${mine.event_id}`, token: ADMIN })).statusCode,
    ).toBe(200);

    await create(bob, { event_type: 'secret.kept', data: { s: 2 } });
    const query = await call(t, {
      method: 'POST',
      url: '/api/v1/events/query',
      token: bob,
      payload: { event_type: 'secret.kept' },
    });
    const users = query.json<{ events: EventJson[] }>().events.map((e) => e.user_id);
    expect(users).toEqual(['bob']);
    const asAlice = await call(t, {
      method: 'POST',
      url: '/api/v1/events/query',
      token: bob,
      payload: { user_id: 'alice' },
    });
    expect(asAlice.statusCode).toBe(403);
    const all = await call(t, {
      method: 'POST',
      url: '/api/v1/events/query',
      token: ADMIN,
      payload: { event_type: 'secret.kept' },
    });
    expect(
      all
        .json<{ events: EventJson[] }>()
        .events.map((e) => e.user_id)
        .sort(),
    ).toEqual(['alice', 'bob']);
  });

  it('counts only the bound user’s events in statistics', async () => {
    const stats = async (token: string, query = '') =>
      (await call(t, { method: 'GET', url: `/api/v1/events/statistics${query}`, token })).json<{
        total_events: number;
        user_id: string | null;
        top_users: { user_id: string }[];
      }>();
    const admin = await stats(ADMIN, '?user_id=bob');
    const bobs = await stats(bob);
    expect(bobs.user_id).toBe('bob');
    expect(bobs.total_events).toBe(admin.total_events);
    expect(bobs.top_users.map((u) => u.user_id)).toEqual(['bob']);
    const forbidden = await call(t, {
      method: 'GET',
      url: '/api/v1/events/statistics?user_id=alice',
      token: bob,
    });
    expect(forbidden.statusCode).toBe(403);
  });

  it('shows a shared stream as the bound user’s events only, and a stream without them as not found', async () => {
    const shared = `${entity}-shared`;
    await create(alice, {
      event_type: 'order.placed',
      entity_type: 'order',
      entity_id: shared,
      data: { a: 1 },
    });
    await create(bob, { event_type: 'order.noted', entity_type: 'order', entity_id: shared, data: { b: 1 } });
    await create(alice, {
      event_type: 'order.paid',
      entity_type: 'order',
      entity_id: shared,
      data: { a: 2 },
    });
    await create(alice, {
      event_type: 'order.placed',
      entity_type: 'order',
      entity_id: `${entity}-alice`,
      data: {},
    });

    const read = async (token: string, streamId: string) =>
      call(t, { method: 'GET', url: `/api/v1/events/stream/${encodeURIComponent(streamId)}`, token });
    const asAlice = (await read(alice, `order:${shared}`)).json<{ version: number; events: EventJson[] }>();
    expect(asAlice.events.map((e) => e.stream_version)).toEqual([1, 3]);
    expect(asAlice.version).toBe(3);
    const asBob = (await read(bob, `order:${shared}`)).json<{ version: number; events: EventJson[] }>();
    expect(asBob.events.map((e) => [e.stream_version, e.user_id])).toEqual([[2, 'bob']]);
    expect(asBob.version).toBe(2);
    expect((await read(bob, `order:${entity}-alice`)).statusCode).toBe(404);
    const backward = await call(t, {
      method: 'GET',
      url: `/api/v1/events/stream/${encodeURIComponent(`order:${shared}`)}?direction=backward`,
      token: bob,
    });
    expect(backward.json<{ events: EventJson[] }>().events.map((e) => e.stream_version)).toEqual([2]);

    const list = async (token: string) =>
      (
        await call(t, { method: 'GET', url: '/api/v1/events/streams?entity_type=order&limit=1000', token })
      ).json<{
        streams: { stream_id: string; version: number; last_event_id: string }[];
        total: number;
      }>();
    const bobs = await list(bob);
    expect(bobs.streams.map((s) => s.stream_id)).toEqual([`order:${shared}`]);
    expect(bobs.streams[0]!.version).toBe(2);
    expect(bobs.total).toBe(1);
    const alices = await list(alice);
    expect(alices.streams.map((s) => s.stream_id).sort()).toEqual([
      `order:${entity}-alice`,
      `order:${shared}`,
    ]);
  });

  it('reads projections only of streams whose every event is the bound user’s', async () => {
    const projection = (token: string, id: string, query = '') =>
      call(t, { method: 'GET', url: `/api/v1/events/projections/order/${id}${query}`, token });
    const own = await projection(alice, `${entity}-alice`);
    expect(own.statusCode, own.body).toBe(200);
    expect((await projection(bob, `${entity}-alice`)).statusCode).toBe(404);
    // Shared: folding it would show the other user's events.
    expect((await projection(alice, `${entity}-shared`)).statusCode).toBe(404);
    expect((await projection(bob, `${entity}-shared`)).statusCode).toBe(404);
    expect((await projection(ADMIN, `${entity}-shared`)).statusCode).toBe(200);
    // Declared projections follow the same rule.
    const register = await call(t, {
      method: 'POST',
      url: '/api/v1/events/projections',
      token: ADMIN,
      payload: {
        name: `orders_${uid('p').replace('-', '_')}`,
        entity_type: 'order',
        handlers: [{ event_type: 'order.placed', operations: [{ op: 'increment', path: 'placed' }] }],
      },
    });
    expect(register.statusCode, register.body).toBe(201);
    const name = register.json<{ name: string }>().name;
    expect((await projection(bob, `${entity}-alice`, `?name=${name}`)).statusCode).toBe(404);
    expect((await projection(alice, `${entity}-shared`, `?name=${name}`)).statusCode).toBe(404);
    expect((await projection(alice, `${entity}-alice`, `?name=${name}`)).statusCode).toBe(200);
  });
});

describe.each(STORE_KINDS)('rate limits (%s)', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(
      kind,
      { RATE_LIMIT_PER_MINUTE: '3', RATE_LIMIT_IP_PER_MINUTE: '2' },
      { defaultAuth: false },
    );
  });
  afterAll(async () => {
    await t.close();
  });

  it('limits each credential, with Retry-After; admins have no limit', async () => {
    const { key } = await createKey(t, { name: 'limited', scopes: ['events:read'] });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push(
        (await call(t, { method: 'GET', url: '/api/v1/events/statistics', token: key })).statusCode,
      );
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limited = await call(t, { method: 'GET', url: '/api/v1/events/statistics', token: key });
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.json()).toEqual({ detail: expect.stringMatching(/per credential/), code: 'rate_limited' });
    const other = await createKey(t, { name: 'other', scopes: ['events:read'] });
    expect(
      (await call(t, { method: 'GET', url: '/api/v1/events/statistics', token: other.key })).statusCode,
    ).toBe(200);
    for (let i = 0; i < 10; i++) {
      expect(
        (await call(t, { method: 'GET', url: '/api/v1/events/statistics', token: ADMIN })).statusCode,
      ).toBe(200);
    }
  });

  it('limits requests without a valid credential per client IP', async () => {
    const attempt = (remoteAddress: string, token?: string) =>
      call(t, { method: 'GET', url: '/api/v1/events/statistics', token, remoteAddress });
    expect((await attempt('10.9.0.1')).statusCode).toBe(401);
    expect((await attempt('10.9.0.1', 'guess')).statusCode).toBe(401);
    const limited = await attempt('10.9.0.1', 'guess-again');
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.json<{ code: string }>().code).toBe('rate_limited');
    expect((await attempt('10.9.0.2')).statusCode).toBe(401);
    // A valid credential from that address is not limited by it.
    expect((await attempt('10.9.0.1', ADMIN)).statusCode).toBe(200);
    // Public endpoints are not counted.
    expect((await call(t, { method: 'GET', url: '/health', remoteAddress: '10.9.0.1' })).statusCode).toBe(
      200,
    );
  });
});

// ---------------------------------------------------------------- JWT

const SECRET = 'jwt-secret-0123456789abcdef0123456789abcdef';
const ISSUER = 'https://idp.example.com/';
const AUDIENCE = 'event-service';

describe.each(STORE_KINDS)('JWT bearer tokens (%s)', (kind) => {
  let t: TestApp;
  let jwks: Server;
  let signingKey: PrivateKey;
  let strangerKey: PrivateKey;
  beforeAll(async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    signingKey = pair.privateKey;
    strangerKey = (await generateKeyPair('RS256')).privateKey;
    const publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    jwks = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [publicJwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const { port } = jwks.address() as AddressInfo;
    t = await startTestApp(
      kind,
      {
        ...NO_LIMITS,
        JWT_SECRET: SECRET,
        JWT_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`,
        JWT_ISSUER: ISSUER,
        JWT_AUDIENCE: AUDIENCE,
        JWT_USER_CLAIM: 'uid',
      },
      { defaultAuth: false },
    );
  });
  afterAll(async () => {
    await t.close();
    await new Promise((resolve) => jwks.close(resolve));
  });

  const hs256 = (claims: JWTPayload, options: { secret?: string; exp?: string | number } = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(options.exp ?? '5m')
      .sign(new TextEncoder().encode(options.secret ?? SECRET));
  const rs256 = (claims: JWTPayload, key: PrivateKey = signingKey) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(key);
  const whoami = (token: string) => call(t, { method: 'GET', url: '/api/v1/auth/whoami', token });

  it('accepts HS256 tokens: sub is the principal, the scope claim its scopes', async () => {
    const token = await hs256({ sub: 'svc-reporting', scope: 'events:read' });
    expect((await whoami(token)).json()).toEqual({
      principal: 'jwt:svc-reporting',
      kind: 'jwt',
      scopes: ['events:read'],
      user_id: null,
    });
    expect(
      (await call(t, { method: 'POST', url: '/api/v1/events/query', token, payload: {} })).statusCode,
    ).toBe(200);
    expect(
      (await call(t, { method: 'POST', url: '/api/v1/events/create', token, payload: {} })).statusCode,
    ).toBe(403);
    const admin = await hs256({ sub: 'ops', roles: ['admin'] });
    expect((await call(t, { method: 'GET', url: '/api/v1/auth/keys', token: admin })).statusCode).toBe(200);
  });

  it('refuses a wrong secret, issuer, audience, an expired token and one without sub', async () => {
    const bad = [
      await hs256({ sub: 'a', scope: 'admin' }, { secret: 'another-secret-0123456789abcdef0123456789' }),
      await new SignJWT({ sub: 'a', scope: 'admin' })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer('https://evil.example.com/')
        .setAudience(AUDIENCE)
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(SECRET)),
      await new SignJWT({ sub: 'a', scope: 'admin' })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer(ISSUER)
        .setAudience('another-service')
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(SECRET)),
      await hs256({ sub: 'a', scope: 'admin' }, { exp: Math.floor(Date.now() / 1000) - 3600 }),
      await hs256({ scope: 'admin' }),
      await rs256({ sub: 'a', scope: 'admin' }, strangerKey),
    ];
    for (const token of bad) expect(isBearer401(await whoami(token)), token).toBe(true);
  });

  it('accepts tokens signed with a key of the JWKS, and binds the user claim', async () => {
    const token = await rs256({ sub: 'user-7', scope: ['events:read', 'events:write'], uid: 'u-7' });
    expect((await whoami(token)).json()).toMatchObject({ principal: 'jwt:user-7', user_id: 'u-7' });
    const created = await call(t, {
      method: 'POST',
      url: '/api/v1/events/create',
      token,
      payload: { event_type: 'jwt.used' },
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json<EventJson>().user_id).toBe('u-7');
  });
});

describe('JWT with a JWKS that does not answer', () => {
  it('is a 503 (the token may be fine), not a 401', async () => {
    const port = await freePort();
    const t = await startTestApp(
      'pglite',
      { JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks`, JWT_JWKS_TIMEOUT_MS: '500' },
      { defaultAuth: false },
    );
    try {
      const { privateKey } = await generateKeyPair('RS256');
      const token = await new SignJWT({ sub: 'a' })
        .setProtectedHeader({ alg: 'RS256' })
        .setExpirationTime('5m')
        .sign(privateKey);
      const res = await call(t, { method: 'GET', url: '/api/v1/auth/whoami', token });
      expect(res.statusCode).toBe(503);
      expect(res.json<{ code: string }>().code).toBe('auth_unavailable');
    } finally {
      await t.close();
    }
  });
});
