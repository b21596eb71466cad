/**
 * The thin driver adapter: the rest of the store speaks only to `Db`, with the same SQL whether it
 * runs on PostgreSQL (node-postgres pool) or on the embedded PGlite.
 */

export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

/**
 * A statement PostgreSQL parses and plans once per connection and then only executes (a named
 * prepared statement; `prepared`). For the hot statements whose planning costs about what their
 * execution does: the append of a group, the claim and completion of a processing batch.
 */
export interface PreparedStatement {
  readonly name: string;
  readonly text: string;
}

const preparedNames = new Map<string, string>();

/**
 * The prepared statement of `text`: one name per distinct text, so a statement built from a few
 * variants (with or without a CTE) is a few prepared statements. Only for texts drawn from a
 * fixed set: every distinct text stays prepared on every connection that ran it.
 */
export function prepared(text: string): PreparedStatement {
  let name = preparedNames.get(text);
  if (name === undefined) {
    name = `event_service_${preparedNames.size + 1}`;
    preparedNames.set(text, name);
  }
  return { name, text };
}

export interface Queryable {
  query<T = Record<string, unknown>>(
    sql: string | PreparedStatement,
    params?: readonly unknown[],
  ): Promise<QueryResult<T>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** How many transactions can usefully run at once (pool size; 1 for PGlite). */
  readonly concurrency: number;
  /** Runs `fn` in one transaction on one connection: COMMIT when it resolves, ROLLBACK when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Runs `fn` holding one connection outside a transaction (session-level advisory locks). */
  withConnection<T>(fn: (conn: Queryable) => Promise<T>): Promise<T>;
  /**
   * Tries to become the one holder of `key` among all instances on this database (a session
   * advisory lock on a connection of its own). Null when another instance holds it.
   */
  tryLease(key: number): Promise<Lease | null>;
  /** The connection pool's use now (metrics); absent where there is no pool (PGlite). */
  poolStats?(): PoolStats;
  close(): Promise<void>;
}

export interface PoolStats {
  /** Connections open. */
  total: number;
  /** Connections open and not checked out. */
  idle: number;
  /** Requests for a connection waiting for one. */
  waiting: number;
  /** The pool's size. */
  max: number;
}

export interface Lease {
  /** True once the lease's connection is gone: the holder must stop acting as the one holder. */
  readonly lost: boolean;
  release(): Promise<void>;
}

import { StoreUnavailableError } from '../domain/errors.js';

/** PostgreSQL error codes that mean "try the same transaction again". */
export const RETRYABLE_SQLSTATES: ReadonlySet<string> = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
]);

/** Error codes and SQLSTATE classes that mean the store is not reachable or not able to serve now. */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '57014', '55P03']);

export function sqlState(error: unknown): string | undefined {
  if (error && typeof error === 'object' && 'code' in error && typeof error.code === 'string')
    return error.code;
  return undefined;
}

export function isUnavailable(error: unknown): boolean {
  const code = sqlState(error);
  if (code && (UNAVAILABLE_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith('08'))) {
    return true;
  }
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connect ECONNREFUSED/i.test(
    message,
  );
}

/** Runs store work, turning connection failures into `StoreUnavailableError` (a 503). */
export async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isUnavailable(error))
      throw new StoreUnavailableError('The event store is unavailable', { cause: error });
    throw error;
  }
}
