/**
 * Forward-only numbered migrations (`migrations/NNNN_name.sql`), applied at start-up under a
 * session advisory lock and recorded in `event.schema_migrations`: two instances starting together
 * both come up, the second finding the work done. Re-running is a no-op.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Db } from './db.js';

/** Arbitrary constant: "event-service migrations". */
const MIGRATION_LOCK_KEY = 7_235_180_042;
const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((file) => /^\d{4}_[\w-]+\.sql$/.test(file))
    .sort()
    .map((file) => ({
      version: Number.parseInt(file.slice(0, 4), 10),
      name: file.slice(5, -4),
      sql: readFileSync(new URL(file, `file://${dir}`), 'utf8'),
    }));
}

/** Applies every migration not yet recorded; returns the versions it applied. */
export async function migrate(db: Db, migrations = loadMigrations()): Promise<number[]> {
  return db.withConnection(async (conn) => {
    await conn.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await conn.query(`CREATE SCHEMA IF NOT EXISTS event`);
      await conn.query(`CREATE TABLE IF NOT EXISTS event.schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const done = await conn.query<{ version: number }>('SELECT version FROM event.schema_migrations');
      const applied = new Set(done.rows.map((row) => row.version));
      const ran: number[] = [];
      for (const migration of migrations) {
        if (applied.has(migration.version)) continue;
        await conn.query('BEGIN');
        try {
          await conn.exec(migration.sql);
          await conn.query('INSERT INTO event.schema_migrations (version, name) VALUES ($1, $2)', [
            migration.version,
            migration.name,
          ]);
          await conn.query('COMMIT');
        } catch (error) {
          await conn.query('ROLLBACK');
          throw new Error(`migration ${migration.version}_${migration.name} failed`, { cause: error });
        }
        ran.push(migration.version);
      }
      return ran;
    } finally {
      await conn.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  });
}
