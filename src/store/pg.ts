/** node-postgres adapter: a pool, one connection per transaction. */
import pg from 'pg';
import type { Logger } from 'pino';
import type { Db, Lease, PreparedStatement, QueryResult, Queryable } from './db.js';

// int8 (positions, counts) as numbers: positions stay far below 2^53.
pg.types.setTypeParser(20, (value) => Number.parseInt(value, 10));
// numeric (sums, averages) as numbers.
pg.types.setTypeParser(1700, (value) => Number.parseFloat(value));

export interface PgOptions {
  connectionString: string;
  poolSize: number;
  statementTimeoutMs: number;
  applicationName?: string;
  logger?: Logger;
}

function wrap(client: pg.PoolClient | pg.Pool): Queryable {
  return {
    async query<T>(sql: string | PreparedStatement, params?: readonly unknown[]): Promise<QueryResult<T>> {
      const values = params as unknown[] | undefined;
      const result =
        typeof sql === 'string'
          ? await client.query(sql, values)
          : await client.query({ name: sql.name, text: sql.text, values });
      return { rows: result.rows as T[], rowCount: result.rowCount ?? 0 };
    },
    async exec(sql: string): Promise<void> {
      await client.query(sql);
    },
  };
}

export function createPgDb(options: PgOptions): Db {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: options.statementTimeoutMs,
    idle_in_transaction_session_timeout: options.statementTimeoutMs,
    application_name: options.applicationName ?? 'event-service',
    options: '-c timezone=UTC',
  });
  // An idle connection that dies (server restart) must not crash the process; the pool replaces it.
  pool.on('error', (error) => options.logger?.warn({ err: error }, 'idle database connection lost'));
  const poolQueryable = wrap(pool);

  return {
    kind: 'postgres',
    concurrency: options.poolSize,
    query: (sql, params) => poolQueryable.query(sql, params),
    exec: (sql) => poolQueryable.exec(sql),
    async transaction(fn) {
      const client = await pool.connect();
      let broken: unknown;
      // A connection that dies while checked out emits 'error' on the client: unhandled, that
      // would crash the process. The pending query fails anyway; remember it to discard the client.
      const onError = (error: Error) => (broken = error);
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const result = await fn(wrap(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          broken = rollbackError;
        }
        throw error;
      } finally {
        client.off('error', onError);
        client.release(broken instanceof Error ? broken : undefined);
      }
    },
    async withConnection(fn) {
      const client = await pool.connect();
      let broken: Error | undefined;
      const onError = (error: Error) => (broken = error);
      client.on('error', onError);
      try {
        return await fn(wrap(client));
      } catch (error) {
        broken ??= error instanceof Error ? error : undefined;
        throw error;
      } finally {
        client.off('error', onError);
        // A connection that failed mid-use may hold session state (advisory locks): drop it.
        client.release(broken);
      }
    },
    async tryLease(key) {
      const client = new pg.Client({
        connectionString: options.connectionString,
        connectionTimeoutMillis: 5_000,
        application_name: `${options.applicationName ?? 'event-service'} lease`,
      });
      let lost = false;
      client.on('error', (error) => {
        lost = true;
        options.logger?.warn({ err: error, key }, 'lease connection lost');
      });
      client.on('end', () => (lost = true));
      try {
        await client.connect();
        const result = await client.query<{ held: boolean }>('SELECT pg_try_advisory_lock($1) AS held', [
          key,
        ]);
        if (result.rows[0]?.held !== true) {
          await client.end();
          return null;
        }
      } catch (error) {
        await client.end().catch(() => undefined);
        throw error;
      }
      const lease: Lease = {
        get lost() {
          return lost;
        },
        async release() {
          lost = true;
          await client.end().catch(() => undefined);
        },
      };
      return lease;
    },
    poolStats: () => ({
      total: pool.totalCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
      max: options.poolSize,
    }),
    close: () => pool.end(),
  };
}
