/**
 * What authentication costs one request, measured in this process without a network or a load
 * generator in the way: `npx tsx bench/auth-cost.ts`.
 *
 * 1. `authenticate()` alone: the environment's admin key (a SHA-256 compared in memory) and an API
 *    key of the database once it is cached (a SHA-256 and a map lookup);
 * 2. the whole check as Fastify runs it: the same route answered through `inject` without a
 *    policy entry that protects it and with one, the difference being the hook (parse the header,
 *    authenticate, rate-limit, check the scope).
 *
 * Compare the microseconds with the service's CPU time per create (`npm run bench -- --only
 * create`: service CPU seconds / requests; docs/benchmarks.md "Authentication cost").
 */
import Fastify from 'fastify';
import { createAuthenticator } from '../src/auth/authenticator.js';
import { generateApiKey } from '../src/auth/keys.js';
import { Access, POLICY } from '../src/auth/policy.js';
import { registerAuth } from '../src/auth/plugin.js';
import { insertApiKey } from '../src/store/api-keys.js';
import { migrate } from '../src/store/migrate.js';
import { createPgliteDb } from '../src/store/pglite.js';

const ADMIN_KEY = 'bench-admin-key-0123456789abcdef0123456789abcdef';

async function perCall(label: string, calls: number, fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(calls, 5000); i++) await fn();
  const started = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) await fn();
  const us = Number(process.hrtime.bigint() - started) / 1000 / calls;
  console.log(`${label.padEnd(58)} ${us.toFixed(2)} µs/request`);
  return us;
}

const db = await createPgliteDb(undefined);
await migrate(db);
const generated = generateApiKey();
await insertApiKey(db, {
  keyId: generated.keyId,
  hash: generated.hash,
  name: 'bench',
  scopes: ['events:read', 'events:write'],
  userId: null,
  expiresAt: null,
});
const authenticator = createAuthenticator({
  db,
  adminApiKey: ADMIN_KEY,
  cacheTtlMs: 60_000,
  cacheMaxEntries: 10_000,
});

await perCall('authenticate(): ADMIN_API_KEY', 200_000, () => authenticator.authenticate(ADMIN_KEY));
await perCall('authenticate(): database API key, cached', 200_000, () =>
  authenticator.authenticate(generated.key),
);

const app = Fastify({ logger: false });
registerAuth(app, {
  authenticator,
  perCredentialPerMinute: 0,
  perIpPerMinute: 0,
  clientIp: (request) => request.socket.remoteAddress ?? '',
  policy: [
    { method: 'POST', url: '/open', access: Access.Public },
    { method: 'POST', url: '/guarded', access: Access.Write },
    ...POLICY,
  ],
});
const handler = async () => ({ ok: true });
app.post('/open', handler);
app.post('/guarded', handler);
await app.ready();
const request = (url: string, key: string) => () =>
  app.inject({
    method: 'POST',
    url,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    payload: '{}',
  });
const calls = 50_000;
const open = await perCall('inject: public route (no check)', calls, request('/open', generated.key));
const admin = await perCall('inject: protected route, ADMIN_API_KEY', calls, request('/guarded', ADMIN_KEY));
const key = await perCall(
  'inject: protected route, database key (cached)',
  calls,
  request('/guarded', generated.key),
);
console.log(`the check, ADMIN_API_KEY: ${(admin - open).toFixed(2)} µs/request`);
console.log(`the check, database key:  ${(key - open).toFixed(2)} µs/request`);
await app.close();
await db.close();
