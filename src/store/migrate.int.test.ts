import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../test-support/db.js';
import { loadMigrations, migrate } from './migrate.js';
import { createPgDb } from './pg.js';
import { createPgliteDb } from './pglite.js';
import { READ_STATUS } from './rows.js';

describe('migrations', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });

  it('two instances migrating an empty database at once both come up; re-running is a no-op', async () => {
    // Start from nothing: drop what the template brought.
    const setup = createPgDb({ connectionString: database.url, poolSize: 1, statementTimeoutMs: 10_000 });
    await setup.exec('DROP SCHEMA event CASCADE');
    await setup.close();
    const dbs = [0, 1].map(() =>
      createPgDb({ connectionString: database.url, poolSize: 2, statementTimeoutMs: 30_000 }),
    );
    try {
      const ran = await Promise.all(dbs.map((db) => migrate(db)));
      const all = loadMigrations().map((m) => m.version);
      expect([...ran[0]!, ...ran[1]!].sort((a, b) => a - b)).toEqual(all);
      expect(await migrate(dbs[0]!)).toEqual([]);
      const recorded = await dbs[0]!.query<{ version: number }>(
        'SELECT version FROM event.schema_migrations ORDER BY 1',
      );
      expect(recorded.rows.map((r) => r.version)).toEqual(all);
    } finally {
      await Promise.all(dbs.map((db) => db.close()));
    }
  });

  it('applies on the embedded store too', async () => {
    const db = await createPgliteDb(undefined);
    try {
      expect(await migrate(db)).toEqual(loadMigrations().map((m) => m.version));
      expect(await migrate(db)).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it('0011 moves claims held at upgrade to the queue rows and their rollup counts to pending', async () => {
    const db = await createPgliteDb(undefined);
    try {
      const all = loadMigrations();
      await migrate(
        db,
        all.filter((m) => m.version <= 10),
      );
      const token = '0190c0c0-0000-7000-8000-00000000a11c';
      await db.exec(`
        INSERT INTO event.events (event_id, event_type, event_source, event_category, "timestamp", status,
          lease_until, claim_token, next_attempt_at, retry_count)
        VALUES ('up-pending', 'up', 'backend', 'system', '2026-01-01T10:00:00Z', 'pending', NULL, NULL, NULL, 0),
          ('up-claimed', 'up', 'backend', 'system', '2026-01-01T10:00:00Z', 'processing',
            now() + interval '1 hour', '${token}', NULL, 0),
          ('up-retry', 'up', 'backend', 'system', '2026-01-01T10:00:00Z', 'pending', NULL, NULL,
            now() + interval '1 hour', 1),
          ('up-done', 'up', 'backend', 'system', '2026-01-01T10:00:00Z', 'processed', NULL, NULL, NULL, 0);
        INSERT INTO event.processing_queue (position)
          SELECT position FROM event.events WHERE status IN ('pending', 'processing');
        INSERT INTO event.stats_hourly (bucket, event_source, event_category, event_type, status, event_count)
        VALUES ('2026-01-01T10:00:00Z', 'backend', 'system', 'up', 'pending', 2),
          ('2026-01-01T10:00:00Z', 'backend', 'system', 'up', 'processing', 1),
          ('2026-01-01T10:00:00Z', 'backend', 'system', 'up', 'processed', 1);
        INSERT INTO event.stats_daily SELECT date_trunc('day', bucket), event_source, event_category, event_type,
          status, event_count, processing_ms_sum, processing_count FROM event.stats_hourly;`);

      expect(await migrate(db, all)).toEqual(all.filter((m) => m.version > 10).map((m) => m.version));

      const queue = await db.query<{ event_id: string; claimed: boolean; delayed: boolean }>(
        `SELECT e.event_id, q.claim_token = '${token}' AND q.lease_until > now() AS claimed,
           q.next_attempt_at > now() AS delayed
         FROM event.processing_queue AS q JOIN event.events AS e USING (position) ORDER BY e.event_id`,
      );
      expect(queue.rows).toEqual([
        { event_id: 'up-claimed', claimed: true, delayed: null },
        { event_id: 'up-pending', claimed: null, delayed: null },
        { event_id: 'up-retry', claimed: null, delayed: true },
      ]);
      const statuses = await db.query<{ event_id: string; stored: string; read: string }>(
        `SELECT event_id, status AS stored, ${READ_STATUS} AS read FROM event.events ORDER BY event_id`,
      );
      expect(statuses.rows).toEqual([
        { event_id: 'up-claimed', stored: 'pending', read: 'processing' },
        { event_id: 'up-done', stored: 'processed', read: 'processed' },
        { event_id: 'up-pending', stored: 'pending', read: 'pending' },
        { event_id: 'up-retry', stored: 'pending', read: 'pending' },
      ]);
      for (const table of ['stats_hourly', 'stats_daily']) {
        const counts = await db.query<{ status: string; n: number }>(
          `SELECT status, event_count::int AS n FROM event.${table} WHERE event_type = 'up' ORDER BY status`,
        );
        expect(counts.rows).toEqual([
          { status: 'pending', n: 3 },
          { status: 'processed', n: 1 },
        ]);
      }
    } finally {
      await db.close();
    }
  });

  it('event content cannot be updated', async () => {
    const db = createPgDb({ connectionString: database.url, poolSize: 1, statementTimeoutMs: 10_000 });
    try {
      await db.query(
        `INSERT INTO event.events (event_id, event_type, event_source, event_category, "timestamp", content_hash)
         VALUES ('imm-1', 't', 'backend', 'system', now(), repeat('0', 64))`,
      );
      await expect(
        db.query(`UPDATE event.events SET data = '{"x":1}' WHERE event_id = 'imm-1'`),
      ).rejects.toThrow(/immutable/);
      // Nor its processing fields: the outcome lives in event.event_outcomes (migration 0012).
      await expect(
        db.query(`UPDATE event.events SET status = 'processed' WHERE event_id = 'imm-1'`),
      ).rejects.toThrow(/immutable/);
    } finally {
      await db.close();
    }
  });

  it('0012: events stored before it read as they were; an outcome row overrides their processing fields', async () => {
    const db = await createPgliteDb(undefined);
    try {
      const all = loadMigrations();
      await migrate(
        db,
        all.filter((m) => m.version <= 11),
      );
      await db.exec(`
        INSERT INTO event.events (event_id, event_type, event_source, event_category, "timestamp", status,
          processed_at, processors, error_message, retry_count, content_hash)
        VALUES ('old-pending', 'up', 'backend', 'system', '2026-01-01T10:00:00Z', 'pending', NULL, '{}', NULL, 0,
            repeat('0', 64)),
          ('old-failed', 'up', 'backend', 'system', '2026-01-01T10:00:00Z', 'failed', '2026-01-01T10:00:01Z',
            '{}', 'boom', 3, repeat('0', 64));`);
      expect(await migrate(db, all)).toEqual(all.filter((m) => m.version > 11).map((m) => m.version));

      const read = () =>
        db.query<Record<string, unknown>>(
          `SELECT event_id, status, processed_at, processors, error_message, retry_count
           FROM event.events_current ORDER BY event_id`,
        );
      expect((await read()).rows).toEqual([
        {
          event_id: 'old-failed',
          status: 'failed',
          processed_at: new Date('2026-01-01T10:00:01Z'),
          processors: [],
          error_message: 'boom',
          retry_count: 3,
        },
        {
          event_id: 'old-pending',
          status: 'pending',
          processed_at: null,
          processors: [],
          error_message: null,
          retry_count: 0,
        },
      ]);
      await db.exec(`
        INSERT INTO event.event_outcomes (position, status, processed_at, processors, error_message, retry_count)
        SELECT position, 'processed', '2026-01-01T10:00:02Z', '{p1}', NULL, 0 FROM event.events
        WHERE event_id = 'old-pending';`);
      expect((await read()).rows[1]).toEqual({
        event_id: 'old-pending',
        status: 'processed',
        processed_at: new Date('2026-01-01T10:00:02Z'),
        processors: ['p1'],
        error_message: null,
        retry_count: 0,
      });
    } finally {
      await db.close();
    }
  });
});
