/**
 * Concurrency guarantees of the append path on real PostgreSQL: optimistic concurrency, gap-free
 * stream versions, unique positions under concurrent batch writers.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../test-support/app.js';
import { normalizeCreate, type CreateEventInput } from '../domain/event.js';
import { createPgDb } from './pg.js';
import { createEventStore, type EventStore } from './index.js';

describe('concurrent writers (postgres)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('postgres');
  });
  afterAll(async () => {
    await t.close();
  });

  const create = (payload: object) =>
    t.app.http.inject({ method: 'POST', url: '/api/v1/events/create', payload });

  it('10 concurrent creates with the same expected_version: exactly one 201, nine 409', async () => {
    const stream = `order:${randomUUID()}`;
    expect((await create({ event_type: 'order.created', stream_id: stream })).statusCode).toBe(201);
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        create({ event_type: 'order.updated', stream_id: stream, expected_version: 1, data: { i } }),
      ),
    );
    const codes = responses.map((r) => r.statusCode).sort();
    expect(codes).toEqual([201, ...Array<number>(9).fill(409)]);
    for (const conflict of responses.filter((r) => r.statusCode === 409)) {
      expect(conflict.json()).toMatchObject({
        code: 'version_conflict',
        actual_version: 2,
        expected_version: 1,
      });
    }
  });

  it('10 concurrent no_stream creates on a new stream: exactly one wins', async () => {
    const stream = `order:${randomUUID()}`;
    const responses = await Promise.all(
      Array.from({ length: 10 }, () =>
        create({ event_type: 'order.created', stream_id: stream, expected_version: 'no_stream' }),
      ),
    );
    expect(responses.filter((r) => r.statusCode === 201)).toHaveLength(1);
    expect(responses.filter((r) => r.statusCode === 409)).toHaveLength(9);
  });

  it('40 concurrent appends to one stream get versions 1..40 with no gap', async () => {
    const stream = `cart:${randomUUID()}`;
    const responses = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        create({ event_type: 'cart.item_added', stream_id: stream, data: { i } }),
      ),
    );
    expect(responses.every((r) => r.statusCode === 201)).toBe(true);
    const versions = responses
      .map((r) => r.json<{ stream_version: number }>().stream_version)
      .sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    const read = await t.app.http.inject({ method: 'GET', url: `/api/v1/events/stream/${stream}` });
    expect(read.json<{ version: number; events: unknown[] }>()).toMatchObject({ version: 40 });
    expect(read.json<{ events: unknown[] }>().events).toHaveLength(40);
  });

  it('20 concurrent batch writers get unique positions, all stored', async () => {
    const user = `batch-${randomUUID()}`;
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, w) =>
        t.app.http.inject({
          method: 'POST',
          url: '/api/v1/events/batch',
          payload: Array.from({ length: 50 }, (_, i) => ({
            event_type: 'load.test',
            user_id: user,
            data: { w, i },
            // every fifth event also goes to a stream shared by all writers
            ...(i % 5 === 0 ? { stream_id: `shared:${user}` } : {}),
          })),
        }),
      ),
    );
    expect(responses.every((r) => r.statusCode === 201)).toBe(true);
    const positions = responses.flatMap((r) => r.json<{ position: number }[]>().map((e) => e.position));
    expect(positions).toHaveLength(1000);
    expect(new Set(positions).size).toBe(1000);
    const versions = responses
      .flatMap((r) => r.json<{ stream_version: number | null }[]>().map((e) => e.stream_version))
      .filter((v): v is number => v !== null)
      .sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    const query = await t.app.http.inject({
      method: 'POST',
      url: '/api/v1/events/query',
      payload: { user_id: user, limit: 1 },
    });
    expect(query.json()).toMatchObject({ total: 1000 });
  });

  it('concurrent repeats of one idempotency key store one event', async () => {
    const key = randomUUID();
    const responses = await Promise.all(
      Array.from({ length: 20 }, () =>
        create({ event_type: 'payment.captured', idempotency_key: key, data: { amount: 5 } }),
      ),
    );
    expect(responses.every((r) => r.statusCode === 201)).toBe(true);
    const ids = new Set(responses.map((r) => r.json<{ event_id: string }>().event_id));
    expect(ids.size).toBe(1);
    const stored = await t.db.query<{ n: number }>(
      'SELECT count(*)::bigint AS n FROM event.events WHERE idempotency_key = $1',
      [key],
    );
    expect(stored.rows[0]!.n).toBe(1);
  });

  it('two instances on one database: one stream gets versions 1..N, one key one event', async () => {
    const dbs = [0, 1].map(() =>
      createPgDb({ connectionString: t.url!, poolSize: 6, statementTimeoutMs: 30_000 }),
    );
    const stores: EventStore[] = dbs.map((db) => createEventStore(db));
    try {
      const stream = `account:${randomUUID()}`;
      const key = randomUUID();
      const append = (store: EventStore, input: CreateEventInput) => {
        const normalized = normalizeCreate(input, 'body', () => new Date());
        if (!normalized.ok) throw new Error('invalid');
        return store.append({ events: [normalized.event] });
      };
      const outcomes = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          append(
            stores[i % 2]!,
            i % 3 === 0
              ? { event_type: 'account.credited', idempotency_key: key, data: { amount: 1 } }
              : { event_type: 'account.touched', stream_id: stream, data: { i } },
          ),
        ),
      );
      expect(outcomes.every((o) => o.type === 'appended')).toBe(true);
      const versions = await t.db.query<{ v: number }>(
        'SELECT stream_version AS v FROM event.events WHERE stream_id = $1 ORDER BY 1',
        [stream],
      );
      expect(versions.rows.map((r) => r.v)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      const keyed = await t.db.query<{ n: number }>(
        'SELECT count(*)::bigint AS n FROM event.events WHERE idempotency_key = $1',
        [key],
      );
      expect(keyed.rows[0]!.n).toBe(1);
    } finally {
      await Promise.all(stores.map((s) => s.drain()));
      await Promise.all(dbs.map((db) => db.close()));
    }
  });
});
