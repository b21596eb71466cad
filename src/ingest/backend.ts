/**
 * Backend services' events arriving over NATS (`events.backend.>`), mapped to the one `NewEvent`.
 * Pure: the message (subject, bytes, headers, stream position) in, an event or the reason it can
 * never be one out.
 *
 * A message is JSON `{type | event_type, data?, user_id?, source?, timestamp?, id?, metadata?,
 * context?, session_id?, organization_id?, device_id?, correlation_id?}`. Mapping of the seed's
 * `create_event_from_nats`: source `backend`, category by `_categorize_nats_event`, `user_id` from
 * `data.user_id` (else the top-level `user_id`), the sending service kept in metadata.
 */
import { createHash } from 'node:crypto';
import type { FieldProblem } from '../domain/errors.js';
import {
  EventCategory,
  EventSource,
  normalizeCreate,
  parseTimestamp,
  type CreateEventInput,
  type JsonObject,
  type NewEvent,
  type NormalizeOptions,
} from '../domain/event.js';
import { CreateEventSchema } from '../events/schemas.js';
import { compileBodySchema, toFieldProblems } from '../http/validation.js';

/** What the mapping needs of a message; a subset of the bus's `InboundMessage`. */
export interface NatsMessage {
  subject: string;
  data: Uint8Array;
  headers: Record<string, string>;
  stream: string;
  streamSequence: number;
  /** When the stream stored it: the event time when the message gives none. */
  time?: Date;
}

export type MappedMessage =
  { ok: true; event: NewEvent } | { ok: false; error: string; problems?: FieldProblem[] };

/** Subjects the backend consumer reads, and the prefix before the sending service's token. */
export const BACKEND_SUBJECT_PREFIX = 'events.backend.';
/** Idempotency keys of NATS-ingested events: `nats:<message id>`. */
export const NATS_KEY_PREFIX = 'nats:';
const MAX_KEY_LENGTH = 255;

/** The seed's `_categorize_nats_event`: substring match on the lower-cased type, in this order. */
export function categorizeBackendEvent(type: string): EventCategory {
  const t = type.toLowerCase();
  if (t.includes('user')) return EventCategory.USER_LIFECYCLE;
  if (t.includes('payment')) return EventCategory.PAYMENT;
  if (t.includes('order')) return EventCategory.ORDER;
  if (t.includes('task')) return EventCategory.TASK;
  if (t.includes('device')) return EventCategory.DEVICE_STATUS;
  return EventCategory.SYSTEM;
}

function header(headers: Record<string, string>, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === wanted) return value;
  return undefined;
}

/**
 * The message's identity across redeliveries: its `Nats-Msg-Id` when the publisher set one (the
 * id JetStream deduplicates on), else `<stream>:<sequence>`.
 */
export function messageIdOf(message: Pick<NatsMessage, 'headers' | 'stream' | 'streamSequence'>): string {
  const given = header(message.headers, 'Nats-Msg-Id');
  return given !== undefined && given !== '' ? given : `${message.stream}:${message.streamSequence}`;
}

/** `nats:<message id>`; an id too long for the key column is replaced by its sha256. */
export function idempotencyKeyOf(messageId: string): string {
  const key = `${NATS_KEY_PREFIX}${messageId}`;
  if (key.length <= MAX_KEY_LENGTH) return key;
  return `${NATS_KEY_PREFIX}sha256:${createHash('sha256').update(messageId).digest('hex')}`;
}

/** The sending service: the subject token after `events.backend.`, null for other subjects. */
export function sourceServiceOf(subject: string): string | null {
  if (!subject.startsWith(BACKEND_SUBJECT_PREFIX)) return null;
  const token = subject.slice(BACKEND_SUBJECT_PREFIX.length).split('.')[0];
  return token === undefined || token === '' ? null : token;
}

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function idText(value: unknown): string | null {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return typeof value === 'string' && value !== '' ? value : null;
}

const ISO_TIME = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2}(?:\.\d+)?)([Zz]|[+-]\d{2}:\d{2})?$/;

/**
 * An RFC 3339 timestamp from a message, or null. One without an offset is read as UTC: Python
 * services send `datetime.utcnow().isoformat()`, which has none.
 */
export function readTimestamp(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const match = ISO_TIME.exec(value.trim());
  if (!match) return null;
  const text = `${match[1]}T${match[2]}${match[3] ?? 'Z'}`;
  const time = parseTimestamp(text);
  return time === null ? null : text;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The message body as a JSON object, or why it is not one. */
export function parseJsonObject(
  data: Uint8Array,
): { ok: true; value: JsonObject } | { ok: false; error: string } {
  let text: string;
  try {
    text = utf8.decode(data);
  } catch {
    return { ok: false, error: 'payload is not valid UTF-8' };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: `payload is not JSON: ${(error as Error).message}` };
  }
  if (!isObject(value)) return { ok: false, error: 'payload is not a JSON object' };
  return { ok: true, value };
}

const validateCreate = compileBodySchema(CreateEventSchema);

const describe = (problems: FieldProblem[]) => problems.map((p) => `${p.path} ${p.message}`).join('; ');

/**
 * Validates a mapped create input with the rules of the create endpoint, then normalizes it;
 * problems are named under `path`.
 */
export function toEvent(
  input: CreateEventInput,
  fallbackTime: Date,
  path = 'message',
  options: NormalizeOptions = {},
): MappedMessage {
  if (!validateCreate(input)) {
    const problems = toFieldProblems(validateCreate.errors ?? [], 'body', path);
    return { ok: false, error: describe(problems), problems };
  }
  const normalized = normalizeCreate(input, path, () => fallbackTime, options);
  if (!normalized.ok) return { ok: false, error: describe(normalized.errors), problems: normalized.errors };
  return { ok: true, event: normalized.event };
}

/** The create input a backend message maps to (no validation yet). */
export function backendInput(body: JsonObject, message: NatsMessage): CreateEventInput | string {
  const type = typeof body.type === 'string' && body.type !== '' ? body.type : body.event_type;
  if (typeof type !== 'string' || type === '') return 'message has no `type` (or `event_type`)';
  if (body.data !== undefined && body.data !== null && !isObject(body.data)) {
    return '`data` must be a JSON object';
  }
  const data = isObject(body.data) ? body.data : {};
  const messageId = messageIdOf(message);
  const metadata: JsonObject = isObject(body.metadata) ? { ...body.metadata } : {};
  metadata.source_service = sourceServiceOf(message.subject);
  if (body.source !== undefined) metadata.source = body.source;
  if (body.id !== undefined) metadata.source_event_id = body.id;
  metadata.nats_subject = message.subject;
  metadata.nats_message_id = messageId;
  const input: CreateEventInput = {
    event_type: type,
    event_source: EventSource.BACKEND,
    event_category: categorizeBackendEvent(type),
    user_id: idText(data.user_id) ?? idText(body.user_id),
    data,
    metadata,
    idempotency_key: idempotencyKeyOf(messageId),
  };
  for (const field of ['session_id', 'organization_id', 'device_id', 'correlation_id'] as const) {
    const value = idText(body[field]);
    if (value !== null) input[field] = value;
  }
  if (isObject(body.context)) input.context = body.context;
  const timestamp = readTimestamp(body.timestamp);
  if (timestamp !== null) {
    input.timestamp = timestamp;
  } else if (body.timestamp !== undefined && body.timestamp !== null) {
    // Not a date we can read: the stream's time is used, the value kept.
    metadata.message_timestamp = body.timestamp;
  }
  return input;
}

/** Maps one message of `events.backend.>`; an error means it can never become an event. */
export function mapBackendMessage(message: NatsMessage, now: () => Date): MappedMessage {
  const parsed = parseJsonObject(message.data);
  if (!parsed.ok) return parsed;
  const input = backendInput(parsed.value, message);
  if (typeof input === 'string') return { ok: false, error: input };
  return toEvent(input, message.time ?? now());
}
