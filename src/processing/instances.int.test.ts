/**
 * The service as real processes on one PostgreSQL database: two instances share the work and
 * never call a processor twice for an event; an instance killed with SIGKILL mid-batch loses
 * nothing (its claims expire and another instance finishes them).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../store/db.js';
import { createPgDb } from '../store/pg.js';
import { createTestDatabase, type TestDatabase } from '../test-support/db.js';
import { uid } from '../test-support/http.js';
import { Receiver } from '../test-support/receiver.js';
import { ADMIN_AUTH_HEADER } from '../test-support/app.js';
import { ServiceProcess } from '../test-support/service-process.js';
import { waitUntil } from '../test-support/wait.js';
import { READ_STATUS } from '../store/rows.js';

async function api(service: ServiceProcess, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${service.url}${path}`, {
    method,
    headers: {
      ...ADMIN_AUTH_HEADER,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function register(service: ServiceProcess, body: Record<string, unknown>): Promise<void> {
  const res = await api(service, 'POST', '/api/v1/events/processors', body);
  expect(res.status, await res.clone().text()).toBe(201);
}

async function createBatch(service: ServiceProcess, events: Record<string, unknown>[]): Promise<string[]> {
  const res = await api(service, 'POST', '/api/v1/events/batch', events);
  expect(res.status).toBe(201);
  return ((await res.json()) as { event_id: string }[]).map((e) => e.event_id);
}

async function statusCounts(db: Db, eventType: string): Promise<Record<string, number>> {
  const result = await db.query<{ status: string; n: number }>(
    `SELECT ${READ_STATUS} AS status, count(*)::int AS n FROM event.events_current AS events WHERE event_type = $1 GROUP BY 1`,
    [eventType],
  );
  return Object.fromEntries(result.rows.map((r) => [r.status, r.n]));
}

// Real processes start slowly on a busy machine: generous limits.
describe('processing on several instances (PostgreSQL, real processes)', { timeout: 150_000 }, () => {
  let database: TestDatabase;
  let db: Db;
  let receiver: Receiver;
  const services: ServiceProcess[] = [];
  const delays = new Map<string, number>();

  beforeAll(async () => {
    database = await createTestDatabase();
    db = createPgDb({ connectionString: database.url, poolSize: 2, statementTimeoutMs: 30_000 });
    receiver = await Receiver.start((request) => ({ status: 200, delayMs: delays.get(request.path) }));
  });
  afterEach(async () => {
    await Promise.all(services.splice(0).map((service) => service.stop('SIGKILL')));
  });
  afterAll(async () => {
    await receiver?.close();
    await db?.close();
    await database?.drop();
  });

  const env = (extra: Record<string, string> = {}) => ({
    DATABASE_URL: database.url,
    DB_POOL_SIZE: '6',
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
    PROCESSING_POLL_MS: '20',
    ...extra,
  });
  const start = async (extra: Record<string, string> = {}) => {
    const service = await ServiceProcess.start(env(extra));
    services.push(service);
    return service;
  };

  it('two instances: every event reaches every processor exactly once', async () => {
    const tag = uid('pair');
    // Small claims, so that both instances take part.
    const [a, b] = await Promise.all([
      start({ PROCESSING_BATCH_SIZE: '10', PROCESSING_CONCURRENCY: '4' }),
      start({ PROCESSING_BATCH_SIZE: '10', PROCESSING_CONCURRENCY: '4' }),
    ]);
    for (const name of ['one', 'two']) {
      await register(a, {
        processor_name: `${tag}-${name}`,
        processor_type: 'webhook',
        filters: { event_type: tag },
        config: { url: receiver.url(`/${tag}/${name}`) },
      });
    }
    const ids: string[] = [];
    const batches = Array.from({ length: 8 }, (_, i) =>
      createBatch(
        i % 2 === 0 ? a : b,
        Array.from({ length: 50 }, (_, j) => ({ event_type: tag, data: { i, j } })),
      ),
    );
    for (const batch of await Promise.all(batches)) ids.push(...batch);
    expect(ids).toHaveLength(400);

    await waitUntil('all processed', async () => (await statusCounts(db, tag)).processed === 400, 60_000);
    for (const name of ['one', 'two']) {
      const calls = receiver.requests.filter((r) => r.path === `/${tag}/${name}`);
      const perEvent = new Map<string, number>();
      for (const call of calls) {
        const id = String(call.headers['x-event-id']);
        perEvent.set(id, (perEvent.get(id) ?? 0) + 1);
      }
      expect(perEvent.size, name).toBe(400);
      expect(
        [...perEvent.values()].every((n) => n === 1),
        `${name}: an event called twice`,
      ).toBe(true);
      expect([...perEvent.keys()].sort()).toEqual([...ids].sort());
    }
    const results = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM event.processing_results WHERE processor_name LIKE $1 AND status = 'success'`,
      [`${tag}-%`],
    );
    expect(results.rows[0]!.n).toBe(800);
  });

  it('kill -9 mid-batch: the claims expire, another instance finishes, nothing is lost', async () => {
    const tag = uid('crash');
    delays.set(`/${tag}`, 150);
    const leased = { PROCESSING_LEASE_MS: '3000', PROCESSING_BATCH_SIZE: '20', PROCESSING_CONCURRENCY: '4' };
    const first = await start(leased);
    await register(first, {
      processor_name: tag,
      processor_type: 'webhook',
      filters: { event_type: tag },
      config: { url: receiver.url(`/${tag}`) },
    });
    const ids = await createBatch(
      first,
      Array.from({ length: 60 }, (_, i) => ({ event_type: tag, data: { i } })),
    );
    const calls = () => receiver.requests.filter((r) => r.path === `/${tag}`);
    await waitUntil('first calls', () => calls().length >= 6);
    expect(await first.stop('SIGKILL')).toBeNull();
    const stranded = await statusCounts(db, tag);
    expect(stranded.processing ?? 0).toBeGreaterThan(0);

    await start(leased);
    await waitUntil(
      'all processed after the restart',
      async () => (await statusCounts(db, tag)).processed === 60,
      60_000,
    );
    const called = new Set(calls().map((c) => String(c.headers['x-event-id'])));
    expect([...called].sort()).toEqual([...ids].sort());
    // One recorded success per event, whatever ran twice.
    const results = await db.query<{ event_id: string; n: number }>(
      `SELECT event_id, count(*)::int AS n FROM event.processing_results
       WHERE processor_name = $1 AND status = 'success' GROUP BY event_id`,
      [tag],
    );
    expect(results.rows).toHaveLength(60);
    expect(results.rows.every((r) => r.n === 1)).toBe(true);
    // Statistics rollups agree with the table after the crash.
    const rollup = await db.query<{ status: string; n: number }>(
      `SELECT status, sum(event_count)::int AS n FROM event.stats_hourly WHERE event_type = $1 GROUP BY status HAVING sum(event_count) <> 0`,
      [tag],
    );
    expect(Object.fromEntries(rollup.rows.map((r) => [r.status, r.n]))).toEqual({ processed: 60 });
  });
});
