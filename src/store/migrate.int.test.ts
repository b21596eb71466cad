import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../test-support/db.js';
import { loadMigrations, migrate } from './migrate.js';
import { createPgDb } from './pg.js';
import { createPgliteDb } from './pglite.js';

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
      await db.query(`UPDATE event.events SET status = 'processed' WHERE event_id = 'imm-1'`);
    } finally {
      await db.close();
    }
  });

  it('no index of event.events names a processing column, so status changes are heap-only updates', async () => {
    const db = createPgDb({ connectionString: database.url, poolSize: 1, statementTimeoutMs: 10_000 });
    try {
      const indexes = await db.query<{ indexdef: string }>(
        `SELECT indexdef FROM pg_indexes WHERE schemaname = 'event' AND tablename = 'events'`,
      );
      expect(indexes.rows.length).toBeGreaterThan(5);
      const processingColumns =
        /\b(status|processed_at|processors|error_message|retry_count|updated_at|lease_until|next_attempt_at|claim_token)\b/;
      for (const { indexdef } of indexes.rows) expect(indexdef).not.toMatch(processingColumns);
    } finally {
      await db.close();
    }
  });
});
