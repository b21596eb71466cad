import { EventStatus, type NewEvent, type StoredEvent } from '../domain/event.js';

/**
 * Whether a processing-queue row is under a live claim (migration 0011), and its negation (a row
 * never claimed, released, or whose claim expired): the one definition the claim, reads, status
 * filters and statistics share. For queries where only the queue has a `lease_until`.
 */
export const LIVE_CLAIM = 'lease_until > now()';
export const NO_LIVE_CLAIM = '(lease_until IS NULL OR lease_until <= now())';

/**
 * What reads select events from: event.events with each event's processing outcome applied
 * (migration 0012: the event's row is written once; its outcome lives in event.event_outcomes),
 * aliased `events`. Same column names as event.events. A query that reads none of the outcome's
 * columns (status, processed_at, processors, error_message, retry_count, updated_at) costs what
 * it cost on event.events: PostgreSQL removes the outer join.
 */
export const EVENTS = 'event.events_current AS events';

/**
 * The status a read returns: `processing` while a live claim holds a pending event (the claim is
 * on its queue row, migration 0011), else the stored one. For queries on `EVENTS`.
 */
export const READ_STATUS = `CASE WHEN status = 'pending' AND EXISTS (
    SELECT 1 FROM event.processing_queue AS held
    WHERE held.position = events.position AND ${LIVE_CLAIM}) THEN 'processing' ELSE status END`;

/** The columns of a stored event, with `status` given as a select expression that names it. */
export const eventColumns = (
  status: string,
) => `position, event_id, event_type, event_source, event_category, user_id,
  session_id, organization_id, device_id, correlation_id, data, metadata, context, properties, ${status},
  processed_at, processors, error_message, retry_count, "timestamp", created_at, updated_at, version,
  schema_version, stream_id, entity_type, entity_id, stream_version, idempotency_key`;

/** The columns every read returns; their names are the JSON field names of `StoredEvent`. */
export const EVENT_COLUMNS = eventColumns(`${READ_STATUS} AS status`);

/** A timestamp as JavaScript's `toISOString` writes it (milliseconds, `Z`). */
const iso = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * A stored event as the JSON text of `StoredEvent` (the fields of EVENT_COLUMNS, in their order,
 * timestamps as `toISOString` writes them), built by the database, with `status` given as a select
 * expression: publishing or posting the event then costs this process no serializing, and reading
 * it one `JSON.parse` (`storedEventOfJson`) instead of decoding every column. For queries on
 * `EVENTS`.
 */
export const eventJson = (status: string) => `json_build_object(
  'position', position, 'event_id', event_id, 'event_type', event_type, 'event_source', event_source,
  'event_category', event_category, 'user_id', user_id, 'session_id', session_id,
  'organization_id', organization_id, 'device_id', device_id, 'correlation_id', correlation_id,
  'data', data, 'metadata', metadata, 'context', context, 'properties', properties, 'status', ${status},
  'processed_at', ${iso('processed_at')}, 'processors', processors, 'error_message', error_message,
  'retry_count', retry_count, 'timestamp', ${iso('"timestamp"')}, 'created_at', ${iso('created_at')},
  'updated_at', ${iso('updated_at')}, 'version', version, 'schema_version', schema_version,
  'stream_id', stream_id, 'entity_type', entity_type, 'entity_id', entity_id,
  'stream_version', stream_version, 'idempotency_key', idempotency_key)::text`;

/** The event of `eventJson`'s text, its timestamps as Dates (what a read by columns returns). */
export function storedEventOfJson(text: string): StoredEvent {
  const event = JSON.parse(text) as Record<keyof StoredEvent, unknown>;
  event.timestamp = new Date(event.timestamp as string);
  event.created_at = new Date(event.created_at as string);
  event.updated_at = new Date(event.updated_at as string);
  if (event.processed_at !== null) event.processed_at = new Date(event.processed_at as string);
  return event as unknown as StoredEvent;
}

/** What the database decides for an inserted row: the append's `RETURNING` (store/append.ts). */
export interface GeneratedColumns {
  position: number;
  event_id: string;
  status: EventStatus;
  /** `now()` of the inserting transaction: also `updated_at`, and `processed_at` when processed. */
  created_at: Date;
}

/** Defaults of `version` and `schema_version` (migration 0001). */
const ROW_VERSION = '1.0.0';

/**
 * The stored event as a read would return it, from what was inserted and what the database
 * generated: decoding every column of every inserted row again cost more than the INSERT's
 * encoding. JSON content keeps the client's key order (a read returns jsonb's); equal as JSON.
 */
export function storedEventOf(
  event: NewEvent,
  streamVersion: number | null,
  generated: GeneratedColumns,
): StoredEvent {
  return {
    position: generated.position,
    event_id: generated.event_id,
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
    status: generated.status,
    processed_at: generated.status === EventStatus.PROCESSED ? generated.created_at : null,
    processors: [],
    error_message: null,
    retry_count: 0,
    timestamp: event.timestamp,
    created_at: generated.created_at,
    updated_at: generated.created_at,
    version: ROW_VERSION,
    schema_version: ROW_VERSION,
    stream_id: event.stream?.streamId ?? null,
    entity_type: event.stream?.entityType ?? null,
    entity_id: event.stream?.entityId ?? null,
    stream_version: streamVersion,
    idempotency_key: event.idempotencyKey,
  };
}
