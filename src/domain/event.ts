/**
 * The event model: enums of the seed contract, the normalized `NewEvent` every ingest path produces,
 * and the stored `StoredEvent`. Pure: no I/O.
 */
import { createHash } from 'node:crypto';
import stableStringify from 'fast-json-stable-stringify';
import { uuidv7 } from './ids.js';
import type { FieldProblem } from './errors.js';

export const EventSource = {
  FRONTEND: 'frontend',
  BACKEND: 'backend',
  SYSTEM: 'system',
  IOT_DEVICE: 'iot_device',
  EXTERNAL_API: 'external_api',
  SCHEDULED: 'scheduled',
} as const;
export type EventSource = (typeof EventSource)[keyof typeof EventSource];
export const EVENT_SOURCES = Object.values(EventSource);

export const EventCategory = {
  USER_ACTION: 'user_action',
  PAGE_VIEW: 'page_view',
  FORM_SUBMIT: 'form_submit',
  CLICK: 'click',
  USER_LIFECYCLE: 'user_lifecycle',
  PAYMENT: 'payment',
  ORDER: 'order',
  TASK: 'task',
  SYSTEM: 'system',
  SECURITY: 'security',
  PERFORMANCE: 'performance',
  ERROR: 'error',
  DEVICE: 'device',
  DEVICE_STATUS: 'device_status',
  TELEMETRY: 'telemetry',
  COMMAND: 'command',
  ALERT: 'alert',
} as const;
export type EventCategory = (typeof EventCategory)[keyof typeof EventCategory];
export const EVENT_CATEGORIES = Object.values(EventCategory);

export const EventStatus = {
  PENDING: 'pending',
  PROCESSING: 'processing',
  PROCESSED: 'processed',
  FAILED: 'failed',
  ARCHIVED: 'archived',
} as const;
export type EventStatus = (typeof EventStatus)[keyof typeof EventStatus];
export const EVENT_STATUSES = Object.values(EventStatus);

export const ProcessingStatus = {
  SUCCESS: 'success',
  FAILED: 'failed',
  SKIPPED: 'skipped',
  RETRY: 'retry',
} as const;
export type ProcessingStatus = (typeof ProcessingStatus)[keyof typeof ProcessingStatus];

/** `any` (default), `no_stream`, `stream_exists`, or the exact current version (0 = no stream). */
export type ExpectedVersion = 'any' | 'no_stream' | 'stream_exists' | number;

export type JsonObject = Record<string, unknown>;

export interface StreamRef {
  streamId: string;
  entityType: string;
  entityId: string;
}

/** What every ingest path produces and the one append function stores. */
export interface NewEvent {
  eventId: string;
  /** True when the client chose the id: a repeat with the same content returns the original. */
  clientEventId: boolean;
  eventType: string;
  eventSource: EventSource;
  eventCategory: EventCategory;
  userId: string | null;
  sessionId: string | null;
  organizationId: string | null;
  deviceId: string | null;
  correlationId: string | null;
  data: JsonObject;
  metadata: JsonObject;
  context: JsonObject | null;
  properties: JsonObject | null;
  timestamp: Date;
  stream: StreamRef | null;
  expectedVersion: ExpectedVersion;
  idempotencyKey: string | null;
  /**
   * sha256 of the client-given content; decides "same content" for idempotent repeats. Null for an
   * event that cannot be repeated (no client `event_id`, no idempotency key): nothing ever compares it.
   */
  contentHash: string | null;
}

export interface StoredEvent {
  position: number;
  event_id: string;
  event_type: string;
  event_source: EventSource;
  event_category: EventCategory;
  user_id: string | null;
  session_id: string | null;
  organization_id: string | null;
  device_id: string | null;
  correlation_id: string | null;
  data: JsonObject;
  metadata: JsonObject;
  context: JsonObject | null;
  properties: JsonObject | null;
  status: EventStatus;
  processed_at: Date | null;
  processors: string[];
  error_message: string | null;
  retry_count: number;
  timestamp: Date;
  created_at: Date;
  updated_at: Date;
  version: string;
  schema_version: string;
  stream_id: string | null;
  entity_type: string | null;
  entity_id: string | null;
  stream_version: number | null;
  idempotency_key: string | null;
}

/** The create request after schema validation (snake_case, as on the wire). */
export interface CreateEventInput {
  event_type: string;
  event_source?: EventSource;
  event_category?: EventCategory;
  user_id?: string | null;
  session_id?: string | null;
  organization_id?: string | null;
  device_id?: string | null;
  correlation_id?: string | null;
  data?: JsonObject;
  metadata?: JsonObject | null;
  context?: JsonObject | null;
  properties?: JsonObject | null;
  timestamp?: string;
  stream_id?: string;
  entity_type?: string;
  entity_id?: string;
  expected_version?: ExpectedVersion;
  idempotency_key?: string;
  event_id?: string;
}

export const STREAM_SEPARATOR = ':';

export function streamIdOf(entityType: string, entityId: string): string {
  return `${entityType}${STREAM_SEPARATOR}${entityId}`;
}

/** Splits `{entity_type}:{entity_id}` at the first separator; null when it is not of that form. */
export function parseStreamId(streamId: string): StreamRef | null {
  const at = streamId.indexOf(STREAM_SEPARATOR);
  if (at <= 0 || at === streamId.length - 1) return null;
  return { streamId, entityType: streamId.slice(0, at), entityId: streamId.slice(at + 1) };
}

/** Timestamps the store accepts: from year 1 up to (not including) 9999-12-31. */
export const TIME_MIN = Date.parse('0001-01-01T00:00:00Z');
export const TIME_MAX = Date.parse('9999-12-31T00:00:00Z');

/** Parses an RFC 3339 timestamp the schema has accepted; null when PostgreSQL could not store it. */
export function parseTimestamp(value: string): Date | null {
  const date = new Date(value);
  const time = date.getTime();
  return Number.isNaN(time) || time < TIME_MIN || time >= TIME_MAX ? null : date;
}

/**
 * Strings PostgreSQL refuses inside text or jsonb: NUL characters and lone UTF-16 surrogates; and
 * nesting deep enough to be an attack. Returns the first problem found, naming the field.
 */
export function findUnstorableString(value: unknown, path: string, depth = 0): FieldProblem | null {
  if (depth > 64) return { path, message: 'nests deeper than 64 levels' };
  if (typeof value === 'string') {
    return value.includes('\u0000') || !value.isWellFormed()
      ? { path, message: 'contains a NUL character or an unpaired surrogate' }
      : null;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnstorableString(value[i], `${path}[${i}]`, depth + 1);
      if (found) return found;
    }
    return null;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (key.includes('\u0000') || !key.isWellFormed()) {
        return { path, message: 'has a key with a NUL character or an unpaired surrogate' };
      }
      const found = findUnstorableString(item, `${path}.${key}`, depth + 1);
      if (found) return found;
    }
  }
  return null;
}

export function contentHash(content: unknown): string {
  return createHash('sha256').update(stableStringify(content)).digest('hex');
}

export type NormalizeResult = { ok: true; event: NewEvent } | { ok: false; errors: FieldProblem[] };

export interface NormalizeOptions {
  /** The id of an event without a client `event_id` (default: a new UUIDv7). */
  serverEventId?: string;
}

/**
 * Turns a schema-valid create request into a `NewEvent`, checking what a JSON schema cannot:
 * stream fields that agree with each other, storable timestamps and strings.
 */
export function normalizeCreate(
  input: CreateEventInput,
  path: string,
  now: () => Date,
  options: NormalizeOptions = {},
): NormalizeResult {
  const errors: FieldProblem[] = [];
  let stream: StreamRef | null = null;
  if (input.stream_id !== undefined) {
    stream = parseStreamId(input.stream_id);
    if (!stream) {
      errors.push({ path: `${path}.stream_id`, message: 'must have the form {entity_type}:{entity_id}' });
    } else if (
      (input.entity_type !== undefined && input.entity_type !== stream.entityType) ||
      (input.entity_id !== undefined && input.entity_id !== stream.entityId)
    ) {
      errors.push({ path: `${path}.stream_id`, message: 'does not match entity_type and entity_id' });
    } else if (stream.entityType.length > 100 || stream.entityId.length > 255) {
      // the limits of entity_type and entity_id (and of their columns)
      errors.push({
        path: `${path}.stream_id`,
        message: 'must have an entity type of at most 100 characters and an entity id of at most 255',
      });
    }
  } else if (input.entity_type !== undefined || input.entity_id !== undefined) {
    if (input.entity_type === undefined) {
      errors.push({ path: `${path}.entity_type`, message: 'is required when entity_id is given' });
    } else if (input.entity_id === undefined) {
      errors.push({ path: `${path}.entity_id`, message: 'is required when entity_type is given' });
    } else {
      stream = {
        streamId: streamIdOf(input.entity_type, input.entity_id),
        entityType: input.entity_type,
        entityId: input.entity_id,
      };
    }
  }
  const expectedVersion = input.expected_version ?? 'any';
  if (expectedVersion !== 'any' && stream === null && errors.length === 0) {
    errors.push({
      path: `${path}.expected_version`,
      message: 'needs a stream (stream_id, or entity_type and entity_id)',
    });
  }
  let timestamp: Date | null = null;
  if (input.timestamp !== undefined) {
    timestamp = parseTimestamp(input.timestamp);
    if (!timestamp)
      errors.push({ path: `${path}.timestamp`, message: 'must be a date from 0001-01-01 up to 9999-12-31' });
  }
  const content = {
    event_type: input.event_type,
    event_source: input.event_source ?? EventSource.BACKEND,
    event_category: input.event_category ?? EventCategory.USER_ACTION,
    user_id: input.user_id ?? null,
    session_id: input.session_id ?? null,
    organization_id: input.organization_id ?? null,
    device_id: input.device_id ?? null,
    correlation_id: input.correlation_id ?? null,
    data: input.data ?? {},
    metadata: input.metadata ?? {},
    context: input.context ?? null,
    properties: input.properties ?? null,
    timestamp: timestamp?.toISOString() ?? null,
    stream_id: stream?.streamId ?? null,
  };
  const unstorable = findUnstorableString(content, path);
  if (unstorable) errors.push(unstorable);
  if (errors.length > 0) return { ok: false, errors };

  return {
    ok: true,
    event: {
      eventId: input.event_id ?? options.serverEventId ?? uuidv7(),
      clientEventId: input.event_id !== undefined,
      eventType: content.event_type,
      eventSource: content.event_source,
      eventCategory: content.event_category,
      userId: content.user_id,
      sessionId: content.session_id,
      organizationId: content.organization_id,
      deviceId: content.device_id,
      correlationId: content.correlation_id,
      data: content.data,
      metadata: content.metadata,
      context: content.context,
      properties: content.properties,
      timestamp: timestamp ?? now(),
      stream,
      expectedVersion,
      idempotencyKey: input.idempotency_key ?? null,
      contentHash:
        input.event_id !== undefined || input.idempotency_key !== undefined ? contentHash(content) : null,
    },
  };
}
