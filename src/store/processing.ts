/**
 * SQL of processing: the processor registry (`event.event_processors`), the engine's claims
 * (leased batches of queue rows, `FOR UPDATE SKIP LOCKED`; the event rows are only read), the
 * completion of a batch (queue rows, outcome rows, processing results, processor counters, rollups
 * and lifecycle messages in one transaction), dead letters and their retry, and results per event.
 *
 * An event's row in event.events is never updated: its outcome (status, processed_at, processors,
 * error_message, retry_count) is written to event.event_outcomes, and reads go through
 * event.events_current (migration 0012).
 *
 * Lock order in every transaction that changes processing state, so none can deadlock another or
 * an append: queue rows → outcome rows → processor rows (sorted by id) → statistics rollups
 * (hourly, then daily, sorted keys) → the outbox position lock (last, see follower.ts). A retry on
 * demand locks the event's row (FOR UPDATE: retries of one event queue there), writes its outcome
 * and then inserts its queue row, which cannot exist yet (a dead letter has none), so nothing
 * waits on it.
 */
import { ConflictError, StoreUnavailableError } from '../domain/errors.js';
import { EventStatus, type StoredEvent } from '../domain/event.js';
import { isUnavailable, prepared, RETRYABLE_SQLSTATES, sqlState, type Db, type Queryable } from './db.js';
import { enqueueOutbox, type OutboxMessage } from './outbox.js';
import { moveStatus, type StatusMove } from './rollups.js';
import { EVENT_COLUMNS, eventJson, EVENTS, NO_LIVE_CLAIM, storedEventOfJson } from './rows.js';

export interface ProcessorRow {
  processor_id: string;
  processor_name: string;
  processor_type: string;
  enabled: boolean;
  priority: number;
  filters: Record<string, unknown>;
  config: Record<string, unknown>;
  error_count: number;
  last_error: string | null;
  last_processed_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export type ProcessorFields = Pick<
  ProcessorRow,
  'processor_name' | 'processor_type' | 'enabled' | 'priority' | 'filters' | 'config'
>;

const PROCESSOR_COLUMNS = `processor_id, processor_name, processor_type, enabled, priority, filters, config,
  error_count, last_error, last_processed_at, created_at, updated_at`;

/** Turns driver failures into the errors callers handle: 503 for an unreachable store, 409 for a taken name. */
async function guard<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isUnavailable(error))
      throw new StoreUnavailableError('The event store is unavailable', { cause: error });
    if (
      sqlState(error) === '23505' &&
      /processor_name/.test((error as { constraint?: string }).constraint ?? (error as Error).message)
    ) {
      throw new ConflictError('A processor with this processor_name already exists', { cause: error });
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Registry

export function insertProcessor(db: Queryable, id: string, fields: ProcessorFields): Promise<ProcessorRow> {
  return guard(async () => {
    const result = await db.query<ProcessorRow>(
      `INSERT INTO event.event_processors (processor_id, processor_name, processor_type, enabled, priority, filters, config)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${PROCESSOR_COLUMNS}`,
      [
        id,
        fields.processor_name,
        fields.processor_type,
        fields.enabled,
        fields.priority,
        JSON.stringify(fields.filters),
        JSON.stringify(fields.config),
      ],
    );
    return result.rows[0]!;
  });
}

export function listProcessors(db: Queryable): Promise<ProcessorRow[]> {
  return guard(async () => {
    const result = await db.query<ProcessorRow>(
      `SELECT ${PROCESSOR_COLUMNS} FROM event.event_processors ORDER BY priority DESC, processor_name`,
    );
    return result.rows;
  });
}

export function getProcessor(db: Queryable, id: string): Promise<ProcessorRow | null> {
  return guard(async () => {
    const result = await db.query<ProcessorRow>(
      `SELECT ${PROCESSOR_COLUMNS} FROM event.event_processors WHERE processor_id = $1`,
      [id],
    );
    return result.rows[0] ?? null;
  });
}

export function updateProcessor(
  db: Queryable,
  id: string,
  fields: ProcessorFields,
): Promise<ProcessorRow | null> {
  return guard(async () => {
    const result = await db.query<ProcessorRow>(
      `UPDATE event.event_processors
       SET processor_name = $2, processor_type = $3, enabled = $4, priority = $5, filters = $6, config = $7,
           updated_at = now()
       WHERE processor_id = $1 RETURNING ${PROCESSOR_COLUMNS}`,
      [
        id,
        fields.processor_name,
        fields.processor_type,
        fields.enabled,
        fields.priority,
        JSON.stringify(fields.filters),
        JSON.stringify(fields.config),
      ],
    );
    return result.rows[0] ?? null;
  });
}

export function deleteProcessor(db: Queryable, id: string): Promise<boolean> {
  return guard(async () => {
    const result = await db.query('DELETE FROM event.event_processors WHERE processor_id = $1', [id]);
    return result.rowCount > 0;
  });
}

/** Sets `enabled`, or flips it when `enabled` is null; null when there is no such processor. */
export function toggleProcessor(
  db: Queryable,
  id: string,
  enabled: boolean | null,
): Promise<ProcessorRow | null> {
  return guard(async () => {
    const result = await db.query<ProcessorRow>(
      `UPDATE event.event_processors SET enabled = COALESCE($2::boolean, NOT enabled), updated_at = now()
       WHERE processor_id = $1 RETURNING ${PROCESSOR_COLUMNS}`,
      [id, enabled],
    );
    return result.rows[0] ?? null;
  });
}

export async function loadEnabledProcessors(db: Queryable): Promise<ProcessorRow[]> {
  const result = await db.query<ProcessorRow>(
    prepared(
      `SELECT ${PROCESSOR_COLUMNS} FROM event.event_processors WHERE enabled ORDER BY priority DESC, processor_name`,
    ),
  );
  return result.rows;
}

// ---------------------------------------------------------------------------------------------
// Claims

/**
 * Queue rows the engine may claim now, oldest first, skipping rows another transaction holds:
 * unclaimed or held by an expired claim, past any retry delay (migration 0011: the claim lives
 * on the queue row, the event's row is written once, with the outcome).
 *
 * The statement that takes them joins back by `ctid` (the row versions this subquery locked), a
 * TID scan per row. Joined by position, the planner hashed the rows taken and scanned the whole
 * queue for them: 38 ms for a claim of 1000 with 150,000 events queued, against 8 ms.
 */
const dueRows = (condition = 'true') => `
         SELECT q.ctid, q.position, q.lease_until IS NOT NULL AS taken_over
         FROM event.processing_queue AS q
         WHERE ${NO_LIVE_CLAIM}
           AND (q.next_attempt_at IS NULL OR q.next_attempt_at <= now())
           AND ${condition}
         ORDER BY q.position
         LIMIT $1
         FOR UPDATE OF q SKIP LOCKED`;

export interface ClaimedEvent extends StoredEvent {
  /** Status before the claim: `pending`, or `processing` when an expired claim was taken over. */
  previous_status: string;
  /**
   * The event as JSON text (`eventJson`, store/rows.ts): what processors send. Not enumerable, so
   * neither `JSON.stringify(event)` nor a spread of the event carries it.
   */
  readonly json: string;
}

/**
 * A claimed event from its row: one JSON text built by the database, parsed once. Decoding ~30
 * columns per row (four of them timestamps) and serializing the event again for the processors
 * was a fifth of the engine's CPU.
 */
function claimedEventOf(row: { previous_status: string; json: string }): ClaimedEvent {
  const event = storedEventOfJson(row.json) as ClaimedEvent;
  event.previous_status = row.previous_status;
  Object.defineProperty(event, 'json', { value: row.json, enumerable: false });
  return event;
}

/**
 * Claims up to `limit` events that are due (pending and past any retry delay, or held by a claim
 * that expired), oldest first, skipping rows another transaction holds. They read as
 * `processing` under `token` until `now() + leaseMs`. One statement: the queue rows take the
 * claim, the event rows are only read.
 */
export async function claimEvents(
  db: Db,
  options: { limit: number; leaseMs: number; token: string },
): Promise<ClaimedEvent[]> {
  const result = await db.query<{ previous_status: string; json: string }>(
    prepared(`WITH claimed AS (
       UPDATE event.processing_queue AS q
       SET lease_until = now() + $2 * interval '1 millisecond', claim_token = $3
       FROM (${dueRows()}) AS c
       WHERE q.ctid = c.ctid
       RETURNING q.position, c.taken_over
     )
     SELECT CASE WHEN claimed.taken_over THEN 'processing' ELSE 'pending' END AS previous_status,
       -- a claimed event is processing: the claim is this statement's own (no probe of the queue)
       ${eventJson(`'processing'`)} AS json
     FROM claimed JOIN ${EVENTS} USING (position)
     ORDER BY position`),
    [options.limit, options.leaseMs, options.token],
  );
  return result.rows.map(claimedEventOf);
}

/**
 * With no processor enabled at all: claims and completes up to `limit` due events in one
 * statement, straight to `processed` (no results, no messages). Returns how many.
 */
export async function processUnmatchedEvents(db: Db, limit: number): Promise<number> {
  return db.transaction(async (tx) => {
    const result = await tx.query<
      Pick<
        StoredEvent,
        'position' | 'timestamp' | 'event_source' | 'event_category' | 'event_type' | 'created_at'
      > & { processed_at: Date }
    >(
      prepared(`WITH due AS (
         DELETE FROM event.processing_queue AS q
         -- decided in this statement's snapshot: a processor registered before an event was
         -- stored is always seen here
         USING (${dueRows('NOT EXISTS (SELECT 1 FROM event.event_processors WHERE enabled)')}) AS c
         WHERE q.ctid = c.ctid
         RETURNING q.position
       ),
       settled AS (
         INSERT INTO event.event_outcomes AS o (position, status, processed_at, processors, error_message, retry_count)
         SELECT v.position, 'processed', now(), v.processors, NULL, v.retry_count
         FROM due JOIN event.events_current AS v USING (position)
         ON CONFLICT (position) DO UPDATE
         SET status = excluded.status, processed_at = excluded.processed_at, error_message = NULL,
             updated_at = now()
         RETURNING o.position, o.processed_at
       )
       SELECT s.position, e."timestamp", e.event_source, e.event_category, e.event_type, s.processed_at,
         e.created_at
       FROM settled AS s JOIN event.events AS e USING (position)`),
      [limit],
    );
    await moveStatus(
      tx,
      result.rows.map((row) => ({
        event: row,
        // The stored status was pending (a dead letter has no queue row).
        from: EventStatus.PENDING,
        to: EventStatus.PROCESSED,
        processingMs: row.processed_at.getTime() - row.created_at.getTime(),
      })),
    );
    return result.rows.length;
  });
}

/** `(event_id, processor_id)` pairs already recorded as successes, as `event_id\u0001processor_id`. */
export async function loadSucceeded(db: Queryable, eventIds: readonly string[]): Promise<Set<string>> {
  if (eventIds.length === 0) return new Set();
  const result = await db.query<{ event_id: string; processor_id: string }>(
    `SELECT DISTINCT event_id, processor_id FROM event.processing_results
     WHERE event_id = ANY($1::text[]) AND status = 'success' AND processor_id IS NOT NULL
       AND replay_id IS NULL`,
    [eventIds],
  );
  return new Set(result.rows.map((row) => succeededKey(row.event_id, row.processor_id)));
}

export const succeededKey = (eventId: string, processorId: string) => `${eventId}\u0001${processorId}`;

// ---------------------------------------------------------------------------------------------
// Completion

export interface ResultRecord {
  event_id: string;
  processor_id: string;
  processor_name: string;
  status: 'success' | 'failed' | 'skipped' | 'retry';
  message: string | null;
  duration_ms: number;
  attempt: number;
  finished_at: Date;
}

export interface EventCompletion {
  event: ClaimedEvent;
  status: 'processed' | 'failed' | 'pending';
  processors: string[];
  error_message: string | null;
  retry_count: number;
  /** Delay before the next attempt, ms (a scheduled retry); null otherwise. */
  retry_after_ms: number | null;
  results: ResultRecord[];
  /** Lifecycle message announcing the outcome, if any; written only when the claim still holds. */
  message: OutboxMessage | null;
}

export interface ProcessorTally {
  processor_id: string;
  errors: number;
  last_error: string | null;
}

export interface CompletionOutcome {
  /** Events whose claim still held and whose outcome is written. */
  completed: string[];
  /** Events whose claim had expired and been taken by another run: nothing written for them. */
  lost: string[];
}

/**
 * Writes a batch's outcome in one transaction: one UPDATE of the events (only those still held
 * under `token`), one INSERT of their processing results, the processors' counters, the rollup
 * status moves and the lifecycle messages. Deadlocks and serialization failures are retried.
 */
export async function completeEvents(
  db: Db,
  token: string,
  completions: readonly EventCompletion[],
  tallies: readonly ProcessorTally[],
): Promise<CompletionOutcome> {
  if (completions.length === 0) return { completed: [], lost: [] };
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction((tx) => completeInTransaction(tx, token, completions, tallies));
    } catch (error) {
      if (RETRYABLE_SQLSTATES.has(sqlState(error) ?? '') && attempt < 5) continue;
      throw error;
    }
  }
}

async function completeInTransaction(
  tx: Queryable,
  token: string,
  completions: readonly EventCompletion[],
  tallies: readonly ProcessorTally[],
): Promise<CompletionOutcome> {
  const sorted = [...completions].sort((a, b) => a.event.position - b.event.position);
  // The claims that still hold, taken first: a settled event leaves the queue, one that waits for
  // a retry keeps its row with the delay. A claim that expired and was taken by another run has
  // another token: nothing is written for it.
  const settled = sorted.filter((c) => c.status !== EventStatus.PENDING).map((c) => c.event.position);
  const waiting = sorted.filter((c) => c.status === EventStatus.PENDING);
  const heldRows = await tx.query<{ position: number }>(
    prepared(`WITH settled AS (
       DELETE FROM event.processing_queue
       WHERE position = ANY($2::bigint[]) AND claim_token = $1::uuid
       RETURNING position
     ),
     waiting AS (
       UPDATE event.processing_queue AS q
       SET claim_token = NULL, lease_until = NULL,
           next_attempt_at = CASE WHEN w.retry_after_ms IS NULL THEN NULL
                                  ELSE now() + w.retry_after_ms * interval '1 millisecond' END
       FROM unnest($3::bigint[], $4::double precision[]) AS w(position, retry_after_ms)
       WHERE q.position = w.position AND q.claim_token = $1::uuid
       RETURNING q.position
     )
     SELECT position FROM settled UNION ALL SELECT position FROM waiting`),
    [token, settled, waiting.map((c) => c.event.position), waiting.map((c) => c.retry_after_ms)],
  );
  const heldPositions = new Set(heldRows.rows.map((row) => row.position));
  const done = sorted.filter((c) => heldPositions.has(c.event.position));
  // A release (status pending, nothing ran, no retry) leaves the event's outcome as it was. The
  // others write it to event.event_outcomes (migration 0012): the event's own row is never updated.
  const written = done.filter((c) => !isRelease(c));
  const outcomes = await tx.query<{ position: number; processed_at: Date | null }>(
    prepared(`INSERT INTO event.event_outcomes AS o (position, status, processed_at, processors, error_message, retry_count)
     SELECT c.position, c.status,
       CASE WHEN c.status IN ('processed', 'failed') THEN now() ELSE c.processed_at END,
       ARRAY(SELECT jsonb_array_elements_text(c.processors)), c.error_message, c.retry_count
     FROM jsonb_to_recordset($1::jsonb) AS c(position bigint, status text, processed_at timestamptz,
       processors jsonb, error_message text, retry_count integer)
     ON CONFLICT (position) DO UPDATE
     SET status = excluded.status, processed_at = excluded.processed_at, processors = excluded.processors,
         error_message = excluded.error_message, retry_count = excluded.retry_count, updated_at = now()
     RETURNING o.position, o.processed_at`),
    [
      JSON.stringify(
        written.map((c) => ({
          position: c.event.position,
          status: c.status,
          processed_at: c.event.processed_at,
          processors: c.processors,
          error_message: c.error_message,
          retry_count: c.retry_count,
        })),
      ),
    ],
  );
  const processedAt = new Map(outcomes.rows.map((row) => [row.position, row.processed_at]));

  const results = done.flatMap((c) => c.results);
  if (results.length > 0) {
    await tx.query(
      prepared(`INSERT INTO event.processing_results
         (event_id, processor_id, processor_name, status, message, duration_ms, attempt, processed_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::integer[],
         $7::integer[], $8::timestamptz[])`),
      [
        results.map((r) => r.event_id),
        results.map((r) => r.processor_id),
        results.map((r) => r.processor_name),
        results.map((r) => r.status),
        results.map((r) => r.message),
        results.map((r) => Math.round(r.duration_ms)),
        results.map((r) => r.attempt),
        results.map((r) => r.finished_at.toISOString()),
      ],
    );
  }

  const activeTallies = [...tallies].sort((a, b) => (a.processor_id < b.processor_id ? -1 : 1));
  if (done.length > 0 && activeTallies.length > 0) {
    const ids = activeTallies.map((t) => t.processor_id);
    await tx.query(
      prepared(
        `SELECT 1 FROM event.event_processors WHERE processor_id = ANY($1::text[]) ORDER BY processor_id FOR UPDATE`,
      ),
      [ids],
    );
    await tx.query(
      prepared(`UPDATE event.event_processors AS p
       SET error_count = p.error_count + t.errors,
           last_error = COALESCE(t.last_error, p.last_error),
           last_processed_at = now()
       FROM unnest($1::text[], $2::integer[], $3::text[]) AS t(processor_id, errors, last_error)
       WHERE p.processor_id = t.processor_id`),
      [ids, activeTallies.map((t) => t.errors), activeTallies.map((t) => t.last_error)],
    );
  }

  await markFailed(
    tx,
    done.filter((c) => c.status === EventStatus.FAILED).map((c) => c.event),
  );

  // The rollups counted these events as pending (a claim does not move them).
  const moves: StatusMove[] = written
    .filter((c) => c.status !== EventStatus.PENDING)
    .map((c) => {
      const at = processedAt.get(c.event.position);
      return {
        event: c.event,
        from: EventStatus.PENDING,
        to: c.status,
        processingMs:
          c.status === EventStatus.PROCESSED && at
            ? at.getTime() - new Date(c.event.created_at).getTime()
            : undefined,
      };
    });
  await moveStatus(tx, moves);

  await enqueueOutbox(
    tx,
    done.flatMap((c) => (c.message ? [c.message] : [])),
  );
  return {
    completed: done.map((c) => c.event.event_id),
    lost: sorted.filter((c) => !heldPositions.has(c.event.position)).map((c) => c.event.event_id),
  };
}

/** A completion that hands the event back untouched: nothing ran, no retry is scheduled. */
function isRelease(completion: EventCompletion): boolean {
  return completion.status === EventStatus.PENDING && completion.retry_after_ms === null;
}

/** Records dead letters (`GET /api/v1/events/failed`). */
async function markFailed(tx: Queryable, events: readonly { position: number }[]): Promise<void> {
  if (events.length === 0) return;
  await tx.query(
    'INSERT INTO event.failed_events (position) SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING',
    [events.map((e) => e.position)],
  );
}

/**
 * Hands claimed events back untouched (the engine is stopping, or the batch could not run): they
 * return to `pending` at once instead of waiting for the lease to expire.
 */
export async function releaseEvents(db: Db, token: string, events: readonly ClaimedEvent[]): Promise<void> {
  if (events.length === 0) return;
  await db.query(
    `UPDATE event.processing_queue SET lease_until = NULL, claim_token = NULL
     WHERE position = ANY($1::bigint[]) AND claim_token = $2::uuid`,
    [events.map((e) => e.position), token],
  );
}

// ---------------------------------------------------------------------------------------------
// Dead letters, retry on demand, results

export function listFailedEvents(
  db: Queryable,
  page: { limit: number; offset: number },
): Promise<{ events: StoredEvent[]; total: number }> {
  return guard(async () => {
    const events = await db.query<StoredEvent>(
      `SELECT ${EVENT_COLUMNS} FROM ${EVENTS}
       WHERE position IN (SELECT position FROM event.failed_events ORDER BY position DESC LIMIT $1 OFFSET $2)
       ORDER BY position DESC`,
      [page.limit, page.offset],
    );
    const total = await db.query<{ n: number }>('SELECT count(*)::bigint AS n FROM event.failed_events');
    return { events: events.rows, total: Number(total.rows[0]?.n ?? 0) };
  });
}

export type RetryOutcome =
  { type: 'retried'; event: StoredEvent } | { type: 'not_found' } | { type: 'not_failed'; status: string };

/** A dead letter back to `pending` with a fresh retry budget; results of earlier attempts stay. */
export function retryFailedEvent(db: Db, eventId: string): Promise<RetryOutcome> {
  return guard(() =>
    db.transaction(async (tx): Promise<RetryOutcome> => {
      // The event's row (never updated) serializes retries of the same event.
      const locked = await tx.query<{ position: number }>(
        'SELECT position FROM event.events WHERE event_id = $1 FOR UPDATE',
        [eventId],
      );
      const position = locked.rows[0]?.position;
      if (position === undefined) return { type: 'not_found' };
      const read = () =>
        tx.query<StoredEvent>(`SELECT ${EVENT_COLUMNS} FROM ${EVENTS} WHERE position = $1`, [position]);
      const event = (await read()).rows[0]!;
      if (event.status !== EventStatus.FAILED) return { type: 'not_failed', status: event.status };
      await tx.query(
        `INSERT INTO event.event_outcomes AS o (position, status, processed_at, processors, error_message, retry_count)
         VALUES ($1, 'pending', NULL, $2::text[], $3, 0)
         ON CONFLICT (position) DO UPDATE
         SET status = 'pending', processed_at = NULL, retry_count = 0, updated_at = now()`,
        [position, event.processors, event.error_message],
      );
      const updated = await read();
      await tx.query('DELETE FROM event.failed_events WHERE position = $1', [event.position]);
      await tx.query('INSERT INTO event.processing_queue (position) VALUES ($1) ON CONFLICT DO NOTHING', [
        event.position,
      ]);
      await moveStatus(tx, [{ event, from: EventStatus.FAILED, to: EventStatus.PENDING }]);
      return { type: 'retried', event: updated.rows[0]! };
    }),
  );
}

export interface ProcessingResultRow {
  result_id: number;
  event_id: string;
  processor_id: string | null;
  processor_name: string;
  status: string;
  message: string | null;
  processed_at: Date;
  duration_ms: number | null;
  attempt: number | null;
  replay_id: string | null;
}

/** An event's processing results, oldest first; null when the event does not exist. */
export function listResults(
  db: Queryable,
  eventId: string,
  page: { limit: number; offset: number },
): Promise<{ results: ProcessingResultRow[]; total: number } | null> {
  return guard(async () => {
    const exists = await db.query('SELECT 1 FROM event.events WHERE event_id = $1', [eventId]);
    if (exists.rows.length === 0) return null;
    const results = await db.query<ProcessingResultRow>(
      `SELECT result_id, event_id, processor_id, processor_name, status, message, processed_at, duration_ms, attempt,
         replay_id
       FROM event.processing_results WHERE event_id = $1 ORDER BY result_id LIMIT $2 OFFSET $3`,
      [eventId, page.limit, page.offset],
    );
    const total = await db.query<{ n: number }>(
      'SELECT count(*)::bigint AS n FROM event.processing_results WHERE event_id = $1',
      [eventId],
    );
    return { results: results.rows, total: Number(total.rows[0]?.n ?? 0) };
  });
}
