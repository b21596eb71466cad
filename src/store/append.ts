/**
 * The one append function. Every ingest path ends here. A group of units is written in one
 * transaction: dedupe lookups, stream locks (sorted, so concurrent groups cannot deadlock),
 * version checks, one INSERT for all rows, stream versions, statistics rollups, COMMIT.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DomainError } from '../domain/errors.js';
import { StoreUnavailableError, ValidationError } from '../domain/errors.js';
import type { NewEvent, StoredEvent } from '../domain/event.js';
import { planGroup, type AppendUnit, type ExistingEvent, type PlannedRow } from './append-plan.js';
import { isUnavailable, RETRYABLE_SQLSTATES, sqlState, type Db, type Queryable } from './db.js';
import { EVENTS_SOURCE, lockPositionOrder } from './follower.js';
import { EVENT_COLUMNS } from './rows.js';
import { addToRollups } from './rollups.js';

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
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction((tx) => appendInTransaction(tx, units));
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

async function appendInTransaction(tx: Queryable, units: AppendUnit[]): Promise<AppendOutcome[]> {
  const events = units.flatMap((unit) => unit.events);
  const { byId, byKey } = await findExisting(tx, events);
  const streamVersions = await lockStreams(tx, events);
  const plan = planGroup(units, byId, byKey, streamVersions);

  // Positions are drawn in commit order (follower.ts): as late as possible, after every lookup.
  if (plan.rows.length > 0) await lockPositionOrder(tx, EVENTS_SOURCE);
  const inserted = await insertRows(tx, plan.rows);
  if (inserted.size !== plan.rows.length) throw new ConcurrentWriteError();
  await updateStreams(tx, plan.rows, inserted);
  await addToRollups(tx, [...inserted.values()]);

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
  const result = await tx.query<StoredEvent & { content_hash: string }>(
    `SELECT ${EVENT_COLUMNS}, content_hash FROM event.events WHERE event_id = ANY($1::text[])
     UNION
     SELECT ${EVENT_COLUMNS}, content_hash FROM event.events WHERE idempotency_key = ANY($2::text[])`,
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

async function insertRows(tx: Queryable, rows: PlannedRow[]): Promise<Map<string, StoredEvent>> {
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
  // One statement for the whole group; ON CONFLICT makes a concurrent duplicate show up as a
  // missing row (the caller retries the group) instead of an error that would fail it.
  const result = await tx.query<StoredEvent>(
    `INSERT INTO event.events (event_id, event_type, event_source, event_category, user_id, session_id,
       organization_id, device_id, correlation_id, data, metadata, context, properties, "timestamp",
       stream_id, entity_type, entity_id, stream_version, idempotency_key, content_hash)
     SELECT event_id, event_type, event_source, event_category, user_id, session_id, organization_id,
       device_id, correlation_id, data, metadata, context, properties, "timestamp", stream_id,
       entity_type, entity_id, stream_version, idempotency_key, content_hash
     FROM jsonb_to_recordset($1::jsonb) AS r(event_id text, event_type text, event_source text,
       event_category text, user_id text, session_id text, organization_id text, device_id text,
       correlation_id text, data jsonb, metadata jsonb, context jsonb, properties jsonb,
       "timestamp" timestamptz, stream_id text, entity_type text, entity_id text, stream_version int,
       idempotency_key text, content_hash text)
     ON CONFLICT DO NOTHING
     RETURNING ${EVENT_COLUMNS}`,
    [JSON.stringify(records)],
  );
  return new Map(result.rows.map((row) => [row.event_id, row]));
}

async function updateStreams(
  tx: Queryable,
  rows: PlannedRow[],
  inserted: Map<string, StoredEvent>,
): Promise<void> {
  const last = new Map<string, StoredEvent>();
  const first = new Map<string, StoredEvent>();
  for (const row of rows) {
    if (!row.event.stream) continue;
    const stored = inserted.get(row.event.eventId)!;
    const id = row.event.stream.streamId;
    if (!first.has(id)) first.set(id, stored);
    last.set(id, stored);
  }
  if (last.size === 0) return;
  const ids = [...last.keys()];
  await tx.query(
    `UPDATE event.event_streams s
     SET version = u.version,
         last_event_id = u.last_event_id,
         last_position = u.last_position,
         first_event_id = COALESCE(s.first_event_id, u.first_event_id),
         first_position = COALESCE(s.first_position, u.first_position),
         updated_at = now()
     FROM unnest($1::text[], $2::int[], $3::text[], $4::bigint[], $5::text[], $6::bigint[])
       AS u(stream_id, version, last_event_id, last_position, first_event_id, first_position)
     WHERE s.stream_id = u.stream_id`,
    [
      ids,
      ids.map((id) => last.get(id)!.stream_version),
      ids.map((id) => last.get(id)!.event_id),
      ids.map((id) => last.get(id)!.position),
      ids.map((id) => first.get(id)!.event_id),
      ids.map((id) => first.get(id)!.position),
    ],
  );
}
