/** Per-test-file databases: a clone of the migrated template on the real PostgreSQL, or an in-memory PGlite. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import type { Db } from '../store/db.js';
import { migrate } from '../store/migrate.js';
import { createPgDb } from '../store/pg.js';
import { createPgliteDb } from '../store/pglite.js';

export type StoreKind = 'postgres' | 'pglite';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: inject('pgAdminUrl') });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates a fresh, migrated PostgreSQL database for one test file. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `event_test_${randomBytes(6).toString('hex')}`;
  await admin((client) => client.query(`CREATE DATABASE "${name}" TEMPLATE "${inject('pgTemplate')}"`));
  return {
    url: withDatabase(inject('pgAdminUrl'), name),
    drop: () =>
      admin((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}

export interface OpenedDb {
  db: Db;
  url?: string;
  close(): Promise<void>;
}

/** A migrated database of the given kind; `close` releases and drops it. */
export async function openTestDb(kind: StoreKind, poolSize = 10): Promise<OpenedDb> {
  if (kind === 'pglite') {
    const db = await createPgliteDb(undefined);
    await migrate(db);
    return { db, close: () => db.close() };
  }
  const database = await createTestDatabase();
  const db = createPgDb({ connectionString: database.url, poolSize, statementTimeoutMs: 30_000 });
  return {
    db,
    url: database.url,
    close: async () => {
      await db.close();
      await database.drop();
    },
  };
}
