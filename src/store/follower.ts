/**
 * Reading the global log in position order without ever skipping an event that commits later with
 * a lower position (the bug of Marten #2370 and Emmett PR #336).
 *
 * Positions are drawn from a sequence inside writing transactions, so they become visible in commit
 * order, not in number order: position 7 can be visible while 6 is still in flight. A follower
 * therefore advances only up to a *horizon*: the last position drawn at some moment T, paired with
 * a transaction id the follower takes (and ends) just after T. Every writer takes its transaction id
 * before drawing a position (append.ts), so every position up to the horizon belongs to a
 * transaction id below the follower's. Once no transaction with a lower id is running (the snapshot
 * xmin is past the follower's id), every position up to the horizon is either visible or never will
 * be (rolled back): the follower reads up to it, then takes a new horizon.
 *
 * Why not the snapshot's xmax: PostgreSQL sets it to the latest *completed* id + 1, so a running
 * transaction with a newer id is below no xmax and held back by no xmin (seen in this repo's
 * follower test). The follower's own id has completed, so every running lower id shows in the xmin.
 */
import type { StoredEvent } from '../domain/event.js';
import type { Queryable } from './db.js';
import { EVENT_COLUMNS } from './rows.js';

/** What a follower follows: a table whose `position` is drawn from `sequence` by writers that took
 * their transaction id first. Identifiers are constants of this module, never user input. */
export interface FollowSource {
  table: string;
  sequence: string;
  columns: string;
}

export const EVENTS_SOURCE: FollowSource = {
  table: 'event.events',
  sequence: 'event.events_position_seq',
  columns: EVENT_COLUMNS,
};

export interface OutboxRow {
  position: number;
  msg_id: string;
  subject: string;
  payload: unknown;
  headers: Record<string, string>;
  created_at: Date;
}

export const OUTBOX_SOURCE: FollowSource = {
  table: 'event.outbox',
  sequence: 'event.outbox_position_seq',
  columns: 'position, msg_id, subject, payload, headers, created_at',
};

export interface Horizon {
  position: number;
  /** The follower's own (ended) transaction id, xid8 as text, taken after `position` was read. */
  xid: string;
}

export interface FollowState {
  /** Every event at or below this position has been read. */
  checkpoint: number;
  horizon: Horizon | null;
}

/** The last position drawn from the source's sequence (0 before the first). */
export async function lastDrawn(db: Queryable, source: FollowSource = EVENTS_SOURCE): Promise<number> {
  const seq = await db.query<{ position: number }>(
    `SELECT (CASE WHEN is_called THEN last_value ELSE 0 END)::bigint AS position FROM ${source.sequence}`,
  );
  return seq.rows[0]?.position ?? 0;
}

/**
 * A transaction id taken, and ended, after the caller read a position. Its transaction commits
 * asynchronously: it wrote nothing, so there is nothing to flush.
 */
export async function takeXid(db: Queryable): Promise<string> {
  const xid = await db.query<{ xid: string }>(
    `SELECT set_config('synchronous_commit', 'off', true) AS _, pg_current_xact_id()::text AS xid`,
  );
  return xid.rows[0]!.xid;
}

export async function takeHorizon(db: Queryable, source: FollowSource = EVENTS_SOURCE): Promise<Horizon> {
  // In this order: the position first, then a transaction id assigned after it.
  const position = await lastDrawn(db, source);
  return { position, xid: await takeXid(db) };
}

/** True when every transaction that could still hold a position up to the horizon has ended. */
export async function horizonSettled(db: Queryable, horizon: Horizon): Promise<boolean> {
  const result = await db.query<{ settled: boolean }>(
    `SELECT pg_snapshot_xmin(pg_current_snapshot()) > $1::xid8 AS settled`,
    [horizon.xid],
  );
  return result.rows[0]?.settled === true;
}

export interface FollowResult<T = StoredEvent> {
  events: T[];
  state: FollowState;
  /** Positions known to exist beyond what could be read safely (for lag metrics). */
  waiting: boolean;
}

/**
 * Reads the next events after `state.checkpoint`, at most `limit`, never past a settled horizon.
 * Returns the new state; the caller persists `checkpoint` once it has handled the events.
 */
export async function readNext<T extends { position: number } = StoredEvent>(
  db: Queryable,
  state: FollowState,
  limit: number,
  source: FollowSource = EVENTS_SOURCE,
): Promise<FollowResult<T>> {
  let horizon = state.horizon;
  if (!horizon) {
    const position = await lastDrawn(db, source);
    // Nothing drawn since the checkpoint: no transaction id spent on an idle poll.
    if (position <= state.checkpoint) {
      return { events: [], state: { checkpoint: state.checkpoint, horizon: null }, waiting: false };
    }
    horizon = { position, xid: await takeXid(db) };
  }
  if (!(await horizonSettled(db, horizon))) {
    return { events: [], state: { checkpoint: state.checkpoint, horizon }, waiting: true };
  }
  const result = await db.query<T>(
    `SELECT ${source.columns} FROM ${source.table} WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3`,
    [state.checkpoint, horizon.position, limit],
  );
  const events = result.rows;
  if (events.length < limit) {
    return { events, state: { checkpoint: horizon.position, horizon: null }, waiting: false };
  }
  return { events, state: { checkpoint: events[events.length - 1]!.position, horizon }, waiting: false };
}
