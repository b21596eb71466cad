/**
 * Segment-spec messages (what RudderStack and Segment SDKs send) mapped to the one `NewEvent`.
 * Shared by the RudderStack webhook and the tracking API. Pure: the receive time is a parameter.
 *
 * The mapping is deterministic: the same message gives the same content hash, so that a retry
 * (same `messageId`) is answered with the event stored the first time. What changes between
 * attempts of one message (its `sentAt`, the time we received it) never enters the hash.
 */
import { createHash } from 'node:crypto';
import {
  contentHash,
  EventCategory,
  EventSource,
  normalizeCreate,
  parseTimestamp,
  TIME_MAX,
  TIME_MIN,
  type CreateEventInput,
  type JsonObject,
  type NormalizeResult,
} from '../domain/event.js';

export const SEGMENT_TYPES = ['track', 'page', 'screen', 'identify', 'group', 'alias'] as const;
export type SegmentType = (typeof SEGMENT_TYPES)[number];

/** Where a message came in; kept in the event's metadata as `ingest_channel`. */
export const IngestChannel = {
  RUDDERSTACK_WEBHOOK: 'rudderstack_webhook',
  TRACKING_API: 'tracking_api',
} as const;
export type IngestChannel = (typeof IngestChannel)[keyof typeof IngestChannel];

type Id = string | number | null;

/** A message that passed `SegmentMessageSchema` (with `type` lower-cased). Unknown fields allowed. */
export interface SegmentMessage {
  type: SegmentType;
  event?: string;
  userId?: Id;
  anonymousId?: Id;
  groupId?: Id;
  previousId?: Id;
  messageId?: Id;
  properties?: JsonObject | null;
  traits?: JsonObject | null;
  context?: JsonObject | null;
  integrations?: JsonObject | null;
  name?: string | null;
  category?: string | null;
  timestamp?: string | null;
  originalTimestamp?: string | null;
  sentAt?: string | null;
  receivedAt?: string | null;
  [field: string]: unknown;
}

/** Idempotency keys of messages share one prefix whichever channel brought them. */
export const MESSAGE_KEY_PREFIX = 'segment:';
const MAX_KEY_LENGTH = 255;
const MAX_ID_LENGTH = 255;

/** Original ids and timestamps of the message, kept in the event's metadata as they were sent. */
export const METADATA_FIELDS = [
  'messageId',
  'anonymousId',
  'userId',
  'originalTimestamp',
  'sentAt',
  'receivedAt',
  'timestamp',
  'channel',
  'rudderId',
  'request_ip',
  'integrations',
] as const;

/** The seed's `_categorize_rudderstack_event`. */
export function categorize(type: SegmentType, event: string | undefined): EventCategory {
  if (type === 'page') return EventCategory.PAGE_VIEW;
  if (type === 'track') {
    const name = (event ?? '').toLowerCase();
    if (name.includes('form')) return EventCategory.FORM_SUBMIT;
    if (name.includes('click')) return EventCategory.CLICK;
  }
  return EventCategory.USER_ACTION;
}

/** `event` for track, else the type (`page`, `identify`, …). */
export function eventTypeOf(message: SegmentMessage): string {
  return message.type === 'track' && message.event ? message.event : message.type;
}

function idText(value: unknown): string | null {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return typeof value === 'string' && value !== '' ? value : null;
}

/** `userId`, else `anonymousId` (empty strings count as absent, as in the seed's `or`). */
export function userIdOf(message: SegmentMessage): string | null {
  return idText(message.userId) ?? idText(message.anonymousId);
}

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Identify/group traits: top-level `traits`, else `context.traits` (where analytics.js puts them). */
export function traitsOf(message: SegmentMessage): JsonObject {
  if (isObject(message.traits)) return message.traits;
  const fromContext = message.context?.traits;
  return isObject(fromContext) ? fromContext : {};
}

export function dataOf(message: SegmentMessage): JsonObject {
  const data: JsonObject = { type: message.type, properties: message.properties ?? {} };
  if (message.type === 'identify' || message.type === 'group') data.traits = traitsOf(message);
  if (message.type === 'page' || message.type === 'screen') {
    if (message.name != null) data.name = message.name;
    if (message.category != null) data.category = message.category;
  }
  const groupId = idText(message.groupId);
  if (groupId !== null) data.groupId = groupId;
  const previousId = idText(message.previousId);
  if (previousId !== null) data.previousId = previousId;
  return data;
}

export function metadataOf(
  message: SegmentMessage,
  channel: IngestChannel,
  batchSentAt: unknown,
): JsonObject {
  const metadata: JsonObject = { ingest_channel: channel };
  for (const field of METADATA_FIELDS) {
    const value = message[field];
    if (value !== undefined) metadata[field] = value;
  }
  if (metadata.sentAt === undefined && typeof batchSentAt === 'string') metadata.sentAt = batchSentAt;
  return metadata;
}

/**
 * `segment:<messageId>`; a messageId too long for the key column is replaced by its sha256, so
 * that every message can still be deduplicated. Null when the message has no id.
 */
export function idempotencyKeyOf(messageId: unknown): string | null {
  const id = idText(messageId);
  if (id === null) return null;
  const key = `${MESSAGE_KEY_PREFIX}${id}`;
  if (key.length <= MAX_KEY_LENGTH) return key;
  return `${MESSAGE_KEY_PREFIX}sha256:${createHash('sha256').update(id).digest('hex')}`;
}

/**
 * Deep merge of contexts: `over` (the message's) wins, `under` (the batch's) fills in. Built with
 * `Object.fromEntries`, so a key named `__proto__` stays a plain key.
 */
export function mergeContext(
  under: JsonObject | null | undefined,
  over: JsonObject | null | undefined,
  depth = 0,
): JsonObject | null {
  if (!isObject(under)) return isObject(over) ? over : null;
  if (!isObject(over)) return under;
  if (depth > 32) return over;
  const keys = new Set([...Object.keys(under), ...Object.keys(over)]);
  return Object.fromEntries(
    [...keys].map((key) => {
      const mine = Object.hasOwn(over, key) ? over[key] : undefined;
      const theirs = Object.hasOwn(under, key) ? under[key] : undefined;
      if (mine === undefined) return [key, theirs];
      if (isObject(mine) && isObject(theirs)) return [key, mergeContext(theirs, mine, depth + 1)];
      return [key, mine];
    }),
  );
}

function time(value: unknown): Date | null {
  return typeof value === 'string' ? parseTimestamp(value) : null;
}

export interface EventTime {
  at: Date;
  /** True when the message gave its own `timestamp` (it is then part of the content). */
  given: boolean;
}

/**
 * When it happened. The message's own `timestamp` if it has one; else corrected for the device's
 * clock skew: `receivedAt - (sentAt - originalTimestamp)` (Segment's formula; `sentAt` of the
 * message or of its batch); else `originalTimestamp`; else the receive time. `receivedAt` is the
 * message's own when it has one (RudderStack's), else ours.
 */
export function eventTime(message: SegmentMessage, batchSentAt: unknown, receivedAt: Date): EventTime {
  const own = time(message.timestamp);
  if (own) return { at: own, given: true };
  const received = time(message.receivedAt) ?? receivedAt;
  const original = time(message.originalTimestamp);
  if (original) {
    const sent = time(message.sentAt) ?? time(batchSentAt);
    const corrected = sent ? new Date(received.getTime() - (sent.getTime() - original.getTime())) : original;
    const inRange = corrected.getTime() >= TIME_MIN && corrected.getTime() < TIME_MAX;
    return { at: inRange ? corrected : original, given: false };
  }
  return { at: received, given: false };
}

/** A context field usable as a session or device id: a string or number of at most 255 characters. */
function contextId(value: unknown): string | null {
  const text = idText(value);
  return text !== null && text.length <= MAX_ID_LENGTH ? text : null;
}

export interface MapOptions {
  channel: IngestChannel;
  /** Where the message is in the request, for error paths: `body`, `body[3]`, `body.batch[3]`. */
  path: string;
  /** When this service received the request. */
  receivedAt: Date;
  /** Batch-level fields of the tracking API's `/v1/batch`. */
  batch?: { context?: JsonObject | null; sentAt?: unknown };
}

/** The create input a message maps to (the timestamp only when the message gave one). */
export function toCreateInput(
  message: SegmentMessage,
  options: MapOptions,
  when: EventTime,
): CreateEventInput {
  const context = mergeContext(options.batch?.context, message.context);
  const key = idempotencyKeyOf(message.messageId);
  const device = context?.device;
  return {
    event_type: eventTypeOf(message),
    event_source: EventSource.FRONTEND,
    event_category: categorize(message.type, message.event),
    user_id: userIdOf(message),
    session_id: contextId(context?.sessionId),
    device_id: isObject(device) ? contextId(device.id) : null,
    data: dataOf(message),
    metadata: metadataOf(message, options.channel, options.batch?.sentAt),
    context,
    ...(when.given && typeof message.timestamp === 'string' ? { timestamp: message.timestamp } : {}),
    ...(key === null ? {} : { idempotency_key: key }),
  };
}

/** Maps one message to a `NewEvent`, or to the problems that keep it from being stored. */
export function toNewEvent(message: SegmentMessage, options: MapOptions): NormalizeResult {
  const when = eventTime(message, options.batch?.sentAt, options.receivedAt);
  const input = toCreateInput(message, options, when);
  const normalized = normalizeCreate(input, options.path, () => when.at);
  if (!normalized.ok) return normalized;
  // `sentAt` is stored but not compared: a retry of the same message is sent at another time.
  const { sentAt: _sentAt, ...stableMetadata } = input.metadata ?? {};
  return {
    ok: true,
    event: { ...normalized.event, contentHash: contentHash({ ...input, metadata: stableMetadata }) },
  };
}

/** Size of a message as Segment counts it: its JSON in bytes. */
export function messageBytes(message: unknown): number {
  return Buffer.byteLength(JSON.stringify(message) ?? '', 'utf8');
}
