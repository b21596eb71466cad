/**
 * The one append function. Every ingest path ends here. A group of units is written atomically:
 * dedupe lookups, stream locks (sorted, so concurrent groups cannot deadlock), version checks, then
 * one INSERT statement for all rows that also takes the position lock and moves the stream heads
 * and the statistics rollups. Without streams that statement is its own transaction.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DomainError } from '../domain/errors.js';
import { StoreUnavailableError, ValidationError } from '../domain/errors.js';
import type { NewEvent, StoredEvent } from '../domain/event.js';
import { planGroup, type AppendUnit, type ExistingEvent, type PlannedRow } from './append-plan.js';
import { isUnavailable, prepared, RETRYABLE_SQLSTATES, sqlState, type Db, type Queryable } from './db.js';
import { EVENTS_SOURCE } from './follower.js';
import { EVENT_COLUMNS, EVENTS, storedEventOf, type GeneratedColumns } from './rows.js';
import { appendRollupCtes } from './rollups.js';

export type { AppendUnit } from './append-plan.js';

export interface AppendedEvent {
  event: StoredEvent;
  /** True when the event was already stored (idempotent repeat) and nothing new was written. */
  replayed: boolean;
}

export type AppendOutcome =
  { type: 'appended'; events: AppendedEvent[] } | { type: 'rejected'; error: DomainError };

/** Thrown inside the transaction when a concurrent writer got in between lookup and insert. */
class ConcurrentWriteError extends Error {}

const MAX_ATTEMPTS = 8;

/** Appends a group of units; never throws for a problem of one unit, only for the store itself. */
export async function appendGroup(db: Db, units: AppendUnit[]): Promise<AppendOutcome[]> {
  if (!units.some((unit) => unit.events.some((event) => event.stream))) {
    // No stream to lock: lookups, then one INSERT statement that is its own transaction (it takes
    // the position lock, writes every row and the rollups, and commits): one round trip for what
    // the lock covers instead of three. A duplicate that a concurrent writer stored after the
    // lookup fails the statement as a whole (no ON CONFLICT here), and so does anything else the
    // database refuses: then the group takes the transactional path below, which sorts it out.
    try {
      return await appendOnce(db, units, 'fail');
    } catch (error) {
      if (isUnavailable(error)) {
        throw new StoreUnavailableError('The event store is unavailable', { cause: error });
      }
    }
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction((tx) => appendOnce(tx, units, 'skip'));
    } catch (error) {
      const retryable =
        error instanceof ConcurrentWriteError || RETRYABLE_SQLSTATES.has(sqlState(error) ?? '');
      if (retryable && attempt < MAX_ATTEMPTS) {
        await sleep(Math.random() * 2 ** attempt);
        continue;
      }
      if (isUnavailable(error)) {
        throw new StoreUnavailableError('The event store is unavailable', { cause: error });
      }
      if (units.length > 1 && !retryable) {
        // One unit's data may have been refused by the database: isolate it, keep the others.
        const outcomes: AppendOutcome[] = [];
        for (const unit of units) outcomes.push(...(await appendGroup(db, [unit])));
        return outcomes;
      }
      const state = sqlState(error);
      if (units.length === 1 && state && /^(22|23)/.test(state)) {
        const detail = error instanceof Error ? error.message : String(error);
        return [
          {
            type: 'rejected',
            error: new ValidationError([{ path: 'body', message: `refused by the store: ${detail}` }]),
          },
        ];
      }
      throw error;
    }
  }
}

/**
 * Lookups, plan, insert. `conflicts`: `skip` inside a transaction (a concurrent duplicate shows up
 * as a missing row and the transaction is retried), `fail` when the INSERT is its own transaction.
 */
async function appendOnce(
  tx: Queryable,
  units: AppendUnit[],
  conflicts: 'skip' | 'fail',
): Promise<AppendOutcome[]> {
  const events = units.flatMap((unit) => unit.events);
  const { byId, byKey } = await findExisting(tx, events);
  const streamVersions = await lockStreams(tx, events);
  const plan = planGroup(units, byId, byKey, streamVersions);

  const inserted = await insertRows(tx, plan.rows, conflicts);
  if (inserted.size !== plan.rows.length) throw new ConcurrentWriteError();

  const storedOf = (row: PlannedRow): StoredEvent => inserted.get(row.event.eventId)!;
  return plan.units.map((unit): AppendOutcome => {
    if (unit.type === 'reject') return { type: 'rejected', error: unit.error };
    return {
      type: 'appended',
      events: unit.items.map((item) =>
        item.type === 'insert'
          ? { event: storedOf(item.row), replayed: false }
          : item.type === 'same-as'
            ? { event: storedOf(item.row), replayed: true }
            : { event: item.event, replayed: true },
      ),
    };
  });
}

async function findExisting(
  tx: Queryable,
  events: NewEvent[],
): Promise<{ byId: Map<string, ExistingEvent>; byKey: Map<string, ExistingEvent> }> {
  const ids = events.filter((e) => e.clientEventId).map((e) => e.eventId);
  const keys = events.flatMap((e) => (e.idempotencyKey === null ? [] : [e.idempotencyKey]));
  const byId = new Map<string, ExistingEvent>();
  const byKey = new Map<string, ExistingEvent>();
  if (ids.length === 0 && keys.length === 0) return { byId, byKey };
  const result = await tx.query<StoredEvent & { content_hash: string | null }>(
    `SELECT ${EVENT_COLUMNS}, content_hash FROM ${EVENTS} WHERE event_id = ANY($1::text[])
     UNION
     SELECT ${EVENT_COLUMNS}, content_hash FROM ${EVENTS} WHERE idempotency_key = ANY($2::text[])`,
    [ids, keys],
  );
  for (const { content_hash, ...event } of result.rows) {
    const existing = { event, contentHash: content_hash };
    byId.set(event.event_id, existing);
    if (event.idempotency_key !== null) byKey.set(event.idempotency_key, existing);
  }
  return { byId, byKey };
}

/** Creates missing stream rows and locks all of them, in stream id order. */
async function lockStreams(tx: Queryable, events: NewEvent[]): Promise<Map<string, number>> {
  const streams = new Map<string, { entityType: string; entityId: string }>();
  for (const event of events) if (event.stream) streams.set(event.stream.streamId, event.stream);
  if (streams.size === 0) return new Map();
  const ids = [...streams.keys()].sort();
  await tx.query(
    `INSERT INTO event.event_streams (stream_id, stream_type, entity_type, entity_id)
     SELECT s.stream_id, s.entity_type, s.entity_type, s.entity_id
     FROM unnest($1::text[], $2::text[], $3::text[]) AS s(stream_id, entity_type, entity_id)
     ORDER BY s.stream_id
     ON CONFLICT DO NOTHING`,
    [ids, ids.map((id) => streams.get(id)!.entityType), ids.map((id) => streams.get(id)!.entityId)],
  );
  const locked = await tx.query<{ stream_id: string; version: number }>(
    `SELECT stream_id, version FROM event.event_streams WHERE stream_id = ANY($1::text[])
     ORDER BY stream_id FOR UPDATE`,
    [ids],
  );
  return new Map(locked.rows.map((row) => [row.stream_id, row.version]));
}

/**
 * Moves each written stream's head to its newest inserted event (rows are locked by `lockStreams`):
 * a CTE of the INSERT statement, over its RETURNING rows.
 */
const STREAMS_CTE = `
     streams AS (
       UPDATE event.event_streams AS s
       SET version = u.stream_version, last_event_id = u.event_id, last_position = u.position,
           first_event_id = COALESCE(s.first_event_id, u.first_event_id),
           first_position = COALESCE(s.first_position, u.first_position), updated_at = now()
       FROM (SELECT DISTINCT ON (stream_id) stream_id, stream_version, event_id, position,
               first_value(event_id) OVER first AS first_event_id,
               first_value(position) OVER first AS first_position
             FROM inserted WHERE stream_id IS NOT NULL
             WINDOW first AS (PARTITION BY stream_id ORDER BY stream_version)
             ORDER BY stream_id, stream_version DESC) AS u
       WHERE s.stream_id = u.stream_id
     ),`;

async function insertRows(
  tx: Queryable,
  rows: PlannedRow[],
  conflicts: 'skip' | 'fail',
): Promise<Map<string, StoredEvent>> {
  if (rows.length === 0) return new Map();
  const records = rows.map(({ event, streamVersion }) => ({
    event_id: event.eventId,
    event_type: event.eventType,
    event_source: event.eventSource,
    event_category: event.eventCategory,
    user_id: event.userId,
    session_id: event.sessionId,
    organization_id: event.organizationId,
    device_id: event.deviceId,
    correlation_id: event.correlationId,
    data: event.data,
    metadata: event.metadata,
    context: event.context,
    properties: event.properties,
    timestamp: event.timestamp.toISOString(),
    stream_id: event.stream?.streamId ?? null,
    entity_type: event.stream?.entityType ?? null,
    entity_id: event.stream?.entityId ?? null,
    stream_version: streamVersion,
    idempotency_key: event.idempotencyKey,
    content_hash: event.contentHash,
  }));
  // One statement for the whole group, which also takes the position lock and counts the rows in
  // the statistics rollups: the lock is held from here to COMMIT, so everything it covers costs
  // one round trip (follower.ts: positions are drawn in commit order, as late as possible, after
  // every lookup; the lock CTE is joined to the rows, so no position is drawn before it is held).
  // In a transaction, ON CONFLICT makes a concurrent duplicate show up as a missing row (the
  // caller retries the group) instead of an error that would fail it.
  // With no processor enabled an event has nothing to wait for: it is stored `processed`, which
  // spares the engine an UPDATE of every row. Decided in this statement's snapshot: a processor
  // enabled before the append began is always seen (as in the engine's unmatched path).
  const result = await tx.query<GeneratedColumns>(
    prepared(`WITH position_order AS MATERIALIZED (SELECT pg_advisory_xact_lock($2::bigint)),
     inserted AS (
     INSERT INTO event.events (event_id, event_type, event_source, event_category, user_id, session_id,
       organization_id, device_id, correlation_id, data, metadata, context, properties, "timestamp",
       stream_id, entity_type, entity_id, stream_version, idempotency_key, content_hash, status, processed_at)
     SELECT event_id, event_type, event_source, event_category, user_id, session_id, organization_id,
       device_id, correlation_id, data, metadata, context, properties, "timestamp", stream_id,
       entity_type, entity_id, stream_version, idempotency_key, content_hash, s.status,
       CASE WHEN s.status = 'processed' THEN now() END
     FROM position_order, (SELECT CASE WHEN EXISTS (SELECT 1 FROM event.event_processors WHERE enabled)
                  THEN 'pending' ELSE 'processed' END AS status) AS s,
       jsonb_to_recordset($1::jsonb) AS r(event_id text, event_type text, event_source text,
       event_category text, user_id text, session_id text, organization_id text, device_id text,
       correlation_id text, data jsonb, metadata jsonb, context jsonb, properties jsonb,
       "timestamp" timestamptz, stream_id text, entity_type text, entity_id text, stream_version int,
       idempotency_key text, content_hash text)
     ${conflicts === 'skip' ? 'ON CONFLICT DO NOTHING' : ''}
     RETURNING position, event_id, event_type, event_source, event_category, user_id, status,
       "timestamp", created_at, stream_id, stream_version
     ),
     queued AS (INSERT INTO event.processing_queue (position) SELECT position FROM inserted WHERE status = 'pending'),
     ${rows.some((row) => row.event.stream) ? STREAMS_CTE : ''}${appendRollupCtes('inserted')}
     SELECT position, event_id, status, created_at FROM inserted`),
    [JSON.stringify(records), EVENTS_SOURCE.lockKey],
  );
  const planned = new Map(rows.map((row) => [row.event.eventId, row]));
  return new Map(
    result.rows.map((generated) => {
      const row = planned.get(generated.event_id)!;
      return [generated.event_id, storedEventOf(row.event, row.streamVersion, generated)];
    }),
  );
}
