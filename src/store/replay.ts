/**
 * SQL of replay jobs (`event.replays`, migration 0007): the selection of events a replay covers
 * (count, first ids, pages in position order), the job's life (insert with its announcement,
 * claim under a lease, renew, page commits, completion, failure, cancel, release) and the
 * processing results a reprocessing replay records.
 *
 * A replay covers the events of its selection stored when it was created: `positionBound` reads,
 * under the events' position-order lock (follower.ts), the highest position whose lower positions
 * are all committed, and every later read is bounded by it, so the count given at creation is
 * exactly what the job goes through however much is stored meanwhile.
 *
 * Pages: by the `(stream_id, stream_version)` key for a stream (versions follow positions within a
 * stream), by the event id key for a list of ids, and otherwise by the primary key within a window
 * of positions the caller chooses (`upTo`), so that no page query scans more than its window
 * whichever index the planner picks.
 *
 * Lock order: the replay row → processing results → the outbox position lock (last).
 */
import type { StoredEvent } from '../domain/event.js';
import { guarded, type Db, type Queryable } from './db.js';
import { EVENTS_SOURCE, lockPositionOrder } from './follower.js';
import { enqueueOutbox, type OutboxMessage } from './outbox.js';
import { Params, whereClause } from './reads.js';
import { EVENT_COLUMNS, eventJson, EVENTS, READ_STATUS } from './rows.js';

export const ReplayStatus = {
  QUEUED: 'queued',
  RUNNING: 'running',
  COMPLETED: 'completed',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
} as const;
export type ReplayStatus = (typeof ReplayStatus)[keyof typeof ReplayStatus];
export const REPLAY_STATUSES = Object.values(ReplayStatus);

/** Which events a replay covers: every criterion given must hold (at least one of the first three). */
export interface ReplaySelection {
  event_ids?: string[];
  stream_id?: string;
  /** Inclusive, RFC 3339; given together with `end_time`. */
  start_time?: string;
  /** Inclusive, RFC 3339. */
  end_time?: string;
  event_type?: string;
  event_source?: string;
}

export interface ReplayRow {
  replay_id: string;
  status: ReplayStatus;
  selection: ReplaySelection;
  target_service: string;
  subject: string;
  reprocess: boolean;
  total: number;
  replayed: number;
  failed: number;
  last_position: number;
  cursor_position: number;
  lease_owner: string | null;
  lease_until: Date | null;
  error: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  updated_at: Date;
}

const REPLAY_COLUMNS = `replay_id, status, selection, target_service, subject, reprocess, total, replayed, failed,
  last_position, cursor_position, lease_owner, lease_until, error, created_at, started_at, finished_at,
  updated_at`;

// ---------------------------------------------------------------------------------------------
// Selection

/** How pages of a selection are read. */
export type PageKey = 'event_ids' | 'stream' | 'position';

export function pageKey(selection: ReplaySelection): PageKey {
  if (selection.event_ids !== undefined) return 'event_ids';
  if (selection.stream_id !== undefined) return 'stream';
  return 'position';
}

function selectionConditions(selection: ReplaySelection, params: Params): string[] {
  const conditions: string[] = [];
  if (selection.event_ids !== undefined)
    conditions.push(`event_id = ANY(${params.add(selection.event_ids)}::text[])`);
  if (selection.stream_id !== undefined) conditions.push(`stream_id = ${params.add(selection.stream_id)}`);
  if (selection.start_time !== undefined)
    conditions.push(`"timestamp" >= ${params.add(selection.start_time)}::timestamptz`);
  // As the query endpoint reads an inclusive end: everything before the next millisecond.
  if (selection.end_time !== undefined) {
    const end = new Date(Date.parse(selection.end_time) + 1).toISOString();
    conditions.push(`"timestamp" < ${params.add(end)}::timestamptz`);
  }
  if (selection.event_type !== undefined) conditions.push(`event_type = ${params.add(selection.event_type)}`);
  if (selection.event_source !== undefined)
    conditions.push(`event_source = ${params.add(selection.event_source)}`);
  return conditions;
}

/**
 * The highest stored position below which nothing can commit any more: read under the position
 * lock that appends take (held for two statements).
 */
export function positionBound(db: Db): Promise<number> {
  return guarded(() =>
    db.transaction(async (tx) => {
      await lockPositionOrder(tx, EVENTS_SOURCE);
      const result = await tx.query<{ p: number }>(
        'SELECT COALESCE(max(position), 0)::bigint AS p FROM event.events',
      );
      return Number(result.rows[0]?.p ?? 0);
    }),
  );
}

export interface SelectionSummary {
  count: number;
  /** Lowest and highest position of a selected event; 0 when none. */
  first: number;
  last: number;
}

/** Exact count and position range of the selected events at or below `bound`. */
export function summarizeSelection(
  db: Queryable,
  selection: ReplaySelection,
  bound: number,
): Promise<SelectionSummary> {
  return guarded(async () => {
    const params = new Params();
    const conditions = [...selectionConditions(selection, params), `position <= ${params.add(bound)}`];
    const result = await db.query<{ n: number; first: number; last: number }>(
      `SELECT count(*)::bigint AS n, COALESCE(min(position), 0)::bigint AS first,
         COALESCE(max(position), 0)::bigint AS last
       FROM ${EVENTS} ${whereClause(conditions)}`,
      params.values,
    );
    const row = result.rows[0];
    return { count: Number(row?.n ?? 0), first: Number(row?.first ?? 0), last: Number(row?.last ?? 0) };
  });
}

/** Ids of the first `limit` selected events at or below `bound`, in position order. */
export function selectionIds(
  db: Queryable,
  selection: ReplaySelection,
  bound: number,
  limit: number,
): Promise<string[]> {
  return guarded(async () => {
    const params = new Params();
    const conditions = [...selectionConditions(selection, params), `position <= ${params.add(bound)}`];
    const result = await db.query<{ event_id: string }>(
      `SELECT event_id FROM ${EVENTS} ${whereClause(conditions)} ORDER BY position LIMIT ${params.add(limit)}`,
      params.values,
    );
    return result.rows.map((row) => row.event_id);
  });
}

export interface PageRequest {
  /** Events after this position. */
  after: number;
  /** Events up to this position. */
  upTo: number;
  limit: number;
}

function pageQuery(selection: ReplaySelection, page: PageRequest, columns: string) {
  const params = new Params();
  const conditions = selectionConditions(selection, params);
  const after = params.add(page.after);
  conditions.push(`position > ${after}`, `position <= ${params.add(page.upTo)}`);
  let order = 'position';
  if (pageKey(selection) === 'stream') {
    // Down the stream's own key from the version at `after` (0 when `after` is not in the stream).
    const stream = params.add(selection.stream_id);
    // (Looked up by the primary key alone: the stream's key would scan the stream for it.)
    conditions.push(
      `stream_version > COALESCE((SELECT CASE WHEN stream_id = ${stream} THEN stream_version END
         FROM event.events WHERE position = ${after}), 0)`,
    );
    order = 'stream_version';
  }
  return {
    sql: `SELECT ${columns} FROM ${EVENTS} ${whereClause(conditions)}
          ORDER BY ${order} LIMIT ${params.add(page.limit)}`,
    values: params.values,
  };
}

/** The next selected events after `after`, up to `upTo`, at most `limit`, in position order. */
export async function readReplayPage(
  db: Queryable,
  selection: ReplaySelection,
  page: PageRequest,
): Promise<StoredEvent[]> {
  const query = pageQuery(selection, page, EVENT_COLUMNS);
  return (await db.query<StoredEvent>(query.sql, query.values)).rows;
}

/** Replayed events as JSON text (the status a column read of the event returns). */
const EVENT_JSON = eventJson(READ_STATUS);

export interface EventJsonRow {
  position: number;
  event_id: string;
  /** The whole stored event as JSON text. */
  json: string;
}

/** As `readReplayPage`, each event as the JSON text of `StoredEvent`. */
export async function readReplayPageJson(
  db: Queryable,
  selection: ReplaySelection,
  page: PageRequest,
): Promise<EventJsonRow[]> {
  const query = pageQuery(selection, page, `position, event_id, ${EVENT_JSON} AS json`);
  return (await db.query<EventJsonRow>(query.sql, query.values)).rows;
}

// ---------------------------------------------------------------------------------------------
// Jobs: the API's side

export interface NewReplay {
  replay_id: string;
  selection: ReplaySelection;
  target_service: string;
  subject: string;
  reprocess: boolean;
  total: number;
  last_position: number;
  cursor_position: number;
}

/** Stores a queued job and its announcement (the outbox) in one transaction. */
export function insertReplay(db: Db, job: NewReplay, announce: OutboxMessage): Promise<ReplayRow> {
  return guarded(() =>
    db.transaction(async (tx) => {
      const result = await tx.query<ReplayRow>(
        `INSERT INTO event.replays (replay_id, selection, target_service, subject, reprocess, total,
           last_position, cursor_position)
         VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7, $8) RETURNING ${REPLAY_COLUMNS}`,
        [
          job.replay_id,
          JSON.stringify(job.selection),
          job.target_service,
          job.subject,
          job.reprocess,
          job.total,
          job.last_position,
          job.cursor_position,
        ],
      );
      await enqueueOutbox(tx, [announce]);
      return result.rows[0]!;
    }),
  );
}

export function getReplay(db: Queryable, replayId: string): Promise<ReplayRow | null> {
  return guarded(async () => {
    const result = await db.query<ReplayRow>(
      `SELECT ${REPLAY_COLUMNS} FROM event.replays WHERE replay_id = $1`,
      [replayId],
    );
    return result.rows[0] ?? null;
  });
}

/** Jobs, newest first, one page. */
export function listReplays(
  db: Queryable,
  options: { status?: ReplayStatus; limit: number; offset: number },
): Promise<{ items: ReplayRow[]; total: number }> {
  return guarded(async () => {
    const params = new Params();
    const conditions = options.status === undefined ? [] : [`status = ${params.add(options.status)}`];
    const where = whereClause(conditions);
    const total = await db.query<{ n: number }>(
      `SELECT count(*)::bigint AS n FROM event.replays ${where}`,
      params.values,
    );
    const items = await db.query<ReplayRow>(
      `SELECT ${REPLAY_COLUMNS} FROM event.replays ${where}
       ORDER BY created_at DESC, replay_id DESC LIMIT ${params.add(options.limit)} OFFSET ${params.add(options.offset)}`,
      params.values,
    );
    return { items: items.rows, total: Number(total.rows[0]?.n ?? 0) };
  });
}

export type CancelOutcome =
  { type: 'cancelled'; job: ReplayRow } | { type: 'finished'; job: ReplayRow } | { type: 'not_found' };

/**
 * Cancels a queued or running job and enqueues its announcement, in one transaction. The instance
 * working on it sees the status at its next page.
 */
export function cancelReplay(
  db: Db,
  replayId: string,
  announce: (job: ReplayRow) => OutboxMessage,
): Promise<CancelOutcome> {
  return guarded(() =>
    db.transaction(async (tx): Promise<CancelOutcome> => {
      const found = await tx.query<ReplayRow>(
        `SELECT ${REPLAY_COLUMNS} FROM event.replays WHERE replay_id = $1 FOR UPDATE`,
        [replayId],
      );
      const job = found.rows[0];
      if (!job) return { type: 'not_found' };
      if (job.status !== ReplayStatus.QUEUED && job.status !== ReplayStatus.RUNNING)
        return { type: 'finished', job };
      const updated = await tx.query<ReplayRow>(
        `UPDATE event.replays SET status = 'cancelled', finished_at = now(), updated_at = now()
         WHERE replay_id = $1 RETURNING ${REPLAY_COLUMNS}`,
        [replayId],
      );
      const cancelled = updated.rows[0]!;
      await enqueueOutbox(tx, [announce(cancelled)]);
      return { type: 'cancelled', job: cancelled };
    }),
  );
}

export interface ReplayResultRow {
  result_id: number;
  event_id: string;
  processor_id: string | null;
  processor_name: string;
  status: string;
  message: string | null;
  processed_at: Date;
  duration_ms: number | null;
}

/** Processing results a replay recorded, in the order they were written, one page. */
export function listReplayResults(
  db: Queryable,
  replayId: string,
  options: { status?: string; limit: number; offset: number },
): Promise<{ results: ReplayResultRow[]; total: number }> {
  return guarded(async () => {
    const params = new Params();
    const conditions = [`replay_id = ${params.add(replayId)}::uuid`];
    if (options.status !== undefined) conditions.push(`status = ${params.add(options.status)}`);
    const where = whereClause(conditions);
    const total = await db.query<{ n: number }>(
      `SELECT count(*)::bigint AS n FROM event.processing_results ${where}`,
      params.values,
    );
    const results = await db.query<ReplayResultRow>(
      `SELECT result_id, event_id, processor_id, processor_name, status, message, processed_at, duration_ms
       FROM event.processing_results ${where}
       ORDER BY result_id LIMIT ${params.add(options.limit)} OFFSET ${params.add(options.offset)}`,
      params.values,
    );
    return { results: results.rows, total: Number(total.rows[0]?.n ?? 0) };
  });
}

// ---------------------------------------------------------------------------------------------
// Jobs: the worker's side

/**
 * Takes the oldest unfinished job no live lease holds (queued, or running under a lease that
 * expired: its instance died) for `owner` until `now() + leaseMs`; null when there is none.
 */
export async function claimReplay(db: Db, owner: string, leaseMs: number): Promise<ReplayRow | null> {
  const result = await db.query<ReplayRow>(
    `UPDATE event.replays AS r
     SET status = 'running', lease_owner = $1, lease_until = now() + $2 * interval '1 millisecond',
         started_at = COALESCE(r.started_at, now()), updated_at = now()
     FROM (
       SELECT replay_id AS claim_id FROM event.replays
       WHERE status IN ('queued', 'running') AND (lease_until IS NULL OR lease_until < now())
       ORDER BY created_at
       LIMIT 1
       FOR UPDATE SKIP LOCKED
     ) AS c
     WHERE r.replay_id = c.claim_id
     RETURNING ${REPLAY_COLUMNS}`,
    [owner, leaseMs],
  );
  return result.rows[0] ?? null;
}

/**
 * Extends `owner`'s lease (and sets `error`, when given); answers the job's status, or null when
 * `owner` no longer holds it (another instance took it over).
 */
export async function renewReplay(
  db: Queryable,
  replayId: string,
  owner: string,
  leaseMs: number,
  error?: string | null,
): Promise<ReplayStatus | null> {
  const result = await db.query<{ status: ReplayStatus }>(
    `UPDATE event.replays
     SET lease_until = CASE WHEN status = 'running' THEN now() + $3 * interval '1 millisecond' END,
         lease_owner = CASE WHEN status = 'running' THEN lease_owner END,
         error = CASE WHEN $4::boolean THEN $5 ELSE error END,
         updated_at = now()
     WHERE replay_id = $1 AND lease_owner = $2
     RETURNING status`,
    [replayId, owner, leaseMs, error !== undefined, error ?? null],
  );
  return result.rows[0]?.status ?? null;
}

/** A processing result of a reprocessing replay. */
export interface ReplayResultRecord {
  event_id: string;
  processor_id: string;
  processor_name: string;
  status: 'success' | 'failed';
  message: string | null;
  duration_ms: number;
  finished_at: Date;
}

export interface PageCommit {
  /** Every selected event at or below it is done. */
  cursor: number;
  replayed: number;
  failed: number;
  results: readonly ReplayResultRecord[];
  leaseMs: number;
}

export type PageCommitOutcome =
  /** Recorded; the job goes on (`running`), has ended with this page (`completed`) or was cancelled meanwhile. */
  | { type: 'recorded'; job: ReplayRow }
  /** `owner` no longer holds the job: nothing recorded. */
  | { type: 'lost' };

/**
 * Records a page in one transaction: the cursor, the counts and the results, with the lease
 * extended; when the cursor reaches the job's end, the job is completed and `announce`'s message
 * enqueued with it. A job cancelled meanwhile still gets the page's counts (its events were
 * published) and its lease is dropped.
 */
export function commitReplayPage(
  db: Db,
  replayId: string,
  owner: string,
  page: PageCommit,
  announce: (job: ReplayRow) => OutboxMessage,
): Promise<PageCommitOutcome> {
  return db.transaction(async (tx): Promise<PageCommitOutcome> => {
    const updated = await tx.query<ReplayRow>(
      `UPDATE event.replays
       SET cursor_position = GREATEST(cursor_position, $3), replayed = replayed + $4, failed = failed + $5,
           status = CASE WHEN status = 'running' AND $3 >= last_position THEN 'completed' ELSE status END,
           finished_at = CASE WHEN status = 'running' AND $3 >= last_position THEN now() ELSE finished_at END,
           lease_until = CASE WHEN status = 'running' AND $3 < last_position
                              THEN now() + $6 * interval '1 millisecond' END,
           lease_owner = CASE WHEN status = 'running' AND $3 < last_position THEN lease_owner END,
           error = NULL,
           updated_at = now()
       WHERE replay_id = $1 AND lease_owner = $2 AND status IN ('running', 'cancelled')
       RETURNING ${REPLAY_COLUMNS}`,
      [replayId, owner, page.cursor, page.replayed, page.failed, page.leaseMs],
    );
    const job = updated.rows[0];
    if (!job) return { type: 'lost' };
    const results = page.results;
    if (results.length > 0) {
      await tx.query(
        `INSERT INTO event.processing_results
           (event_id, processor_id, processor_name, status, message, duration_ms, attempt, processed_at, replay_id)
         SELECT r.event_id, r.processor_id, r.processor_name, r.status, r.message, r.duration_ms, 1,
           r.processed_at, $8::uuid
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::integer[], $7::timestamptz[])
           AS r(event_id, processor_id, processor_name, status, message, duration_ms, processed_at)`,
        [
          results.map((r) => r.event_id),
          results.map((r) => r.processor_id),
          results.map((r) => r.processor_name),
          results.map((r) => r.status),
          results.map((r) => r.message),
          results.map((r) => Math.round(r.duration_ms)),
          results.map((r) => r.finished_at.toISOString()),
          replayId,
        ],
      );
    }
    if (job.status === ReplayStatus.COMPLETED) await enqueueOutbox(tx, [announce(job)]);
    return { type: 'recorded', job };
  });
}

/** Ends `owner`'s job as failed with `error`, and enqueues `announce`'s message; false when not held. */
export function failReplay(
  db: Db,
  replayId: string,
  owner: string,
  error: string,
  announce: (job: ReplayRow) => OutboxMessage,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const updated = await tx.query<ReplayRow>(
      `UPDATE event.replays
       SET status = 'failed', error = $3, finished_at = now(), lease_owner = NULL, lease_until = NULL,
           updated_at = now()
       WHERE replay_id = $1 AND lease_owner = $2 AND status = 'running'
       RETURNING ${REPLAY_COLUMNS}`,
      [replayId, owner, error.slice(0, 4000)],
    );
    const job = updated.rows[0];
    if (!job) return false;
    await enqueueOutbox(tx, [announce(job)]);
    return true;
  });
}

/** Hands `owner`'s job back (it stops): another instance, or this one restarted, resumes it at once. */
export async function releaseReplay(db: Queryable, replayId: string, owner: string): Promise<void> {
  await db.query(
    `UPDATE event.replays SET lease_owner = NULL, lease_until = NULL, updated_at = now()
     WHERE replay_id = $1 AND lease_owner = $2`,
    [replayId, owner],
  );
}
