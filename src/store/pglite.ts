/**
 * Embedded adapter: PGlite (PostgreSQL compiled to WASM) in this process, data in a directory.
 * One connection, so transactions run one at a time. PGlite does not fsync: fine for trying the
 * service and small installs, not for data you cannot lose.
 */
import { mkdirSync } from 'node:fs';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import type { Db, PreparedStatement, QueryResult, Queryable } from './db.js';

function wrap(target: PGlite | Transaction): Queryable {
  return {
    async query<T>(sql: string | PreparedStatement, params?: readonly unknown[]): Promise<QueryResult<T>> {
      // PGlite keeps no prepared statements by name: the text is all it needs.
      const text = typeof sql === 'string' ? sql : sql.text;
      const result = await target.query<T>(text, params as unknown[] | undefined);
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    },
    async exec(sql: string): Promise<void> {
      await target.exec(sql);
    },
  };
}

const TIMESTAMPTZ_OID = 1184;

/**
 * PGlite's own parser hands `0001-01-01 00:00:00+00` to `new Date`, whose non-ISO parsing reads
 * years below 100 as 19xx/20xx. Rewritten as ISO 8601 (`T`, `+00:00`) every stored year parses.
 */
export function parseTimestamptz(value: string): Date {
  const iso = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d)(?::(\d\d))?$/.exec(value);
  return new Date(iso ? `${iso[1]}T${iso[2]}${iso[3]}:${iso[4] ?? '00'}` : value);
}

/** `dataDir` undefined keeps everything in memory (tests). */
export async function createPgliteDb(dataDir: string | undefined): Promise<Db> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir, { parsers: { [TIMESTAMPTZ_OID]: parseTimestamptz } });
  await db.exec(`SET timezone = 'UTC'`);
  const direct = wrap(db);
  return {
    kind: 'pglite',
    concurrency: 1,
    query: (sql, params) => direct.query(sql, params),
    exec: (sql) => direct.exec(sql),
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    withConnection: (fn) => fn(direct),
    // One process owns a PGlite directory: it is always the one holder.
    tryLease: async () => ({ lost: false, release: async () => undefined }),
    close: () => db.close(),
  };
}
