/**
 * Reading the global log in position order without ever skipping an event that commits later with
 * a lower position (the bug of Marten #2370 and Emmett PR #336).
 *
 * Positions come from a sequence drawn inside writing transactions. Left alone they would become
 * visible in commit order, not number order: position 7 visible while 6 is still in flight, and a
 * reader that moved past 7 would never see 6. So writers draw positions only while holding a
 * transaction-level advisory lock (`lockPositionOrder`), taken as late as possible (right before
 * the INSERT, after all lookups and stream locks). PostgreSQL releases transaction locks only after
 * the commit is visible, so when a position is drawn every lower position is already visible or
 * rolled back for good. A reader that sees position p therefore sees every committed position
 * below p, and "everything after my checkpoint, in position order" is gap-free.
 *
 * Why not the usual alternatives: following by snapshot xmin (Emmett) stalls every follower while
 * any transaction anywhere in the PostgreSQL cluster stays open (a bulk load in another database
 * did exactly that in this repo's tests), and the snapshot xmax is the latest *completed* id + 1,
 * which does not cover a running transaction with a newer id. The lock costs little here: appends
 * already serialize on the statistics rollup rows of the current hour, and groups commit many
 * events at once.
 */
import type { StoredEvent } from '../domain/event.js';
import { prepared, type Queryable } from './db.js';
import { EVENT_COLUMNS, EVENTS } from './rows.js';

/** What a follower follows. Identifiers are constants of this module, never user input. */
export interface FollowSource {
  table: string;
  columns: string;
  /** Advisory lock key writers hold while drawing positions of this table. */
  lockKey: number;
}

export const EVENTS_SOURCE: FollowSource = {
  table: EVENTS,
  columns: EVENT_COLUMNS,
  lockKey: 7_235_180_100,
};

export interface OutboxRow {
  position: number;
  msg_id: string;
  subject: string;
  /** The message body as JSON text: published as it is, never decoded on the way. */
  payload: string;
  headers: Record<string, string>;
  created_at: Date;
}

export const OUTBOX_SOURCE: FollowSource = {
  table: 'event.outbox',
  columns: 'position, msg_id, subject, payload::text AS payload, headers, created_at',
  lockKey: 7_235_180_101,
};

/**
 * Writers call this in their transaction right before the INSERT that draws positions (the append
 * takes the same lock, `source.lockKey`, in the first CTE of its INSERT: store/append.ts).
 */
export async function lockPositionOrder(tx: Queryable, source: FollowSource): Promise<void> {
  await tx.query(prepared('SELECT pg_advisory_xact_lock($1)'), [source.lockKey]);
}

export interface FollowResult<T> {
  events: T[];
  /** Every row at or below this position has been read. */
  checkpoint: number;
}

/** Reads the next rows after `checkpoint`, at most `limit`, in position order. */
export async function readNext<T extends { position: number } = StoredEvent>(
  db: Queryable,
  checkpoint: number,
  limit: number,
  source: FollowSource = EVENTS_SOURCE,
): Promise<FollowResult<T>> {
  const result = await db.query<T>(
    prepared(`SELECT ${source.columns} FROM ${source.table} WHERE position > $1 ORDER BY position LIMIT $2`),
    [checkpoint, limit],
  );
  const last = result.rows[result.rows.length - 1];
  return { events: result.rows, checkpoint: last ? last.position : checkpoint };
}

/**
 * The positions after `checkpoint`, at most `limit`, in position order: the same gap-free read as
 * `readNext` without decoding the rows (a follower that holds most of them already, like the
 * relay with the events its own instance appended, fetches only the others: `readEventsAt`).
 */
export async function readNextPositions(
  db: Queryable,
  checkpoint: number,
  limit: number,
  source: FollowSource = EVENTS_SOURCE,
): Promise<number[]> {
  const result = await db.query<{ position: number }>(
    prepared(`SELECT position FROM ${source.table} WHERE position > $1 ORDER BY position LIMIT $2`),
    [checkpoint, limit],
  );
  return result.rows.map((row) => row.position);
}

/** The events at these positions, in position order. */
export async function readEventsAt(db: Queryable, positions: readonly number[]): Promise<StoredEvent[]> {
  if (positions.length === 0) return [];
  const result = await db.query<StoredEvent>(
    prepared(`SELECT ${EVENT_COLUMNS} FROM ${EVENTS} WHERE position = ANY($1::bigint[]) ORDER BY position`),
    [positions],
  );
  return result.rows;
}
