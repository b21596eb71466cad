/**
 * Frontend events (endpoints 16-17): the lightweight model browsers send, its category, its
 * JetStream subject, and the create input it becomes. The same input is stored directly or
 * published and consumed back (`mapFrontendMessage`), so both roads give the same content hash and
 * a redelivery is an idempotent repeat. Pure.
 */
import { uuidv7 } from '../domain/ids.js';
import {
  EVENT_CATEGORIES,
  EventCategory,
  EventSource,
  type CreateEventInput,
  type JsonObject,
} from '../domain/event.js';
import { subjectToken } from '../domain/subjects.js';
import {
  idempotencyKeyOf,
  messageIdOf,
  parseJsonObject,
  toEvent,
  type MappedMessage,
  type NatsMessage,
} from './backend.js';

/** A frontend event as the schema accepted it; fields beyond these are kept (`extra_fields`). */
export interface FrontendEventBody {
  event_type: string;
  category?: string | null;
  page_url?: string | null;
  user_id?: string | null;
  session_id?: string | null;
  data?: JsonObject | null;
  metadata?: JsonObject | null;
  timestamp?: string | null;
  event_id?: string;
  [extra: string]: unknown;
}

/** What the server saw of the request: never taken from the body. */
export interface RequestClient {
  ip: string;
  userAgent: string | undefined;
  referer: string | undefined;
}

export const FRONTEND_SUBJECT_PREFIX = 'events.frontend';

/** Category names browsers' SDKs use that are not `EventCategory` values. */
const CATEGORY_ALIASES: Readonly<Record<string, EventCategory>> = {
  user_interaction: EventCategory.USER_ACTION,
  interaction: EventCategory.USER_ACTION,
  action: EventCategory.USER_ACTION,
  engagement: EventCategory.USER_ACTION,
  page: EventCategory.PAGE_VIEW,
  pageview: EventCategory.PAGE_VIEW,
  page_load: EventCategory.PAGE_VIEW,
  navigation: EventCategory.PAGE_VIEW,
  screen: EventCategory.PAGE_VIEW,
  screen_view: EventCategory.PAGE_VIEW,
  form: EventCategory.FORM_SUBMIT,
  submit: EventCategory.FORM_SUBMIT,
  form_submission: EventCategory.FORM_SUBMIT,
  tap: EventCategory.CLICK,
  js_error: EventCategory.ERROR,
  exception: EventCategory.ERROR,
  web_vitals: EventCategory.PERFORMANCE,
  timing: EventCategory.PERFORMANCE,
};

const CATEGORY_VALUES: ReadonlySet<string> = new Set(EVENT_CATEGORIES);

/** Substring rules (the seed's RudderStack ones, extended): first match wins. */
function byWords(text: string): EventCategory | null {
  if (text.includes('click') || text.includes('tap')) return EventCategory.CLICK;
  if (text.includes('form') || text.includes('submit')) return EventCategory.FORM_SUBMIT;
  if (text.includes('page') || text.includes('screen')) return EventCategory.PAGE_VIEW;
  if (text.includes('error') || text.includes('exception')) return EventCategory.ERROR;
  return null;
}

/**
 * The category of a frontend event: the request's `category` when it is an `EventCategory`
 * value or a known alias; else the first word rule that matches the category, then the event
 * type (`click`/`tap` → click, `form`/`submit` → form_submit, `page`/`screen` → page_view,
 * `error`/`exception` → error); else `user_action`.
 */
export function categorizeFrontendEvent(
  category: string | null | undefined,
  eventType: string,
): EventCategory {
  const given = (category ?? '').trim().toLowerCase();
  if (given !== '') {
    if (CATEGORY_VALUES.has(given)) return given as EventCategory;
    const alias = CATEGORY_ALIASES[given];
    if (alias) return alias;
    const byCategory = byWords(given);
    if (byCategory) return byCategory;
  }
  return byWords(eventType.toLowerCase()) ?? EventCategory.USER_ACTION;
}

/** `events.frontend.{category}.{event_type}`, tokens sanitized. */
export function frontendSubject(category: EventCategory, eventType: string): string {
  return `${FRONTEND_SUBJECT_PREFIX}.${subjectToken(category)}.${subjectToken(eventType)}`;
}

const KNOWN_FIELDS = new Set([
  'event_type',
  'category',
  'page_url',
  'user_id',
  'session_id',
  'data',
  'metadata',
  'timestamp',
  'event_id',
]);

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Metadata of a frontend event, from the least to the most authoritative: the batch's
 * `client_info`, the event's own `metadata`, then what the server captured (`page_url` of the
 * event, `client_ip`, `user_agent`, `referer`: a client cannot forge these through the body).
 */
export function frontendMetadata(
  event: FrontendEventBody,
  clientInfo: JsonObject | null | undefined,
  client: RequestClient,
): JsonObject {
  const metadata: JsonObject = Object.fromEntries([
    ...Object.entries(isObject(clientInfo) ? clientInfo : {}),
    ...Object.entries(isObject(event.metadata) ? event.metadata : {}),
  ]);
  const extra = Object.fromEntries(Object.entries(event).filter(([key]) => !KNOWN_FIELDS.has(key)));
  if (Object.keys(extra).length > 0) metadata.extra_fields = extra;
  if (typeof event.category === 'string' && event.category !== '') metadata.category = event.category;
  if (typeof event.page_url === 'string') metadata.page_url = event.page_url;
  metadata.client_ip = client.ip;
  if (client.userAgent !== undefined) metadata.user_agent = client.userAgent;
  if (client.referer !== undefined) metadata.referer = client.referer;
  metadata.ingest_channel = 'frontend';
  return metadata;
}

export interface FrontendInput {
  subject: string;
  input: CreateEventInput & { event_id: string; timestamp: string };
  /** The collector chose `input.event_id` (the client sent none). */
  idGenerated: boolean;
}

/**
 * The create input of one frontend event, with its id (the client's `event_id`, else a new
 * UUIDv7) and its time (the client's `timestamp`, else `receivedAt`) fixed now, so that storing it
 * directly or after a trip through JetStream gives the same event.
 */
export function toFrontendInput(
  event: FrontendEventBody,
  clientInfo: JsonObject | null | undefined,
  client: RequestClient,
  receivedAt: Date,
): FrontendInput {
  const category = categorizeFrontendEvent(event.category, event.event_type);
  return {
    subject: frontendSubject(category, event.event_type),
    idGenerated: event.event_id === undefined,
    input: {
      event_id: event.event_id ?? uuidv7(),
      event_type: event.event_type,
      event_source: EventSource.FRONTEND,
      event_category: category,
      user_id: event.user_id ?? null,
      session_id: event.session_id ?? null,
      data: isObject(event.data) ? event.data : {},
      metadata: frontendMetadata(event, clientInfo, client),
      timestamp: typeof event.timestamp === 'string' ? event.timestamp : receivedAt.toISOString(),
    },
  };
}

/**
 * Maps one message of `events.frontend.>` (a create input as `toFrontendInput` made it). A message
 * published there by someone else without an `event_id` is deduplicated by its NATS message id.
 */
export function mapFrontendMessage(message: NatsMessage, now: () => Date): MappedMessage {
  const parsed = parseJsonObject(message.data);
  if (!parsed.ok) return parsed;
  const input = { ...parsed.value } as unknown as CreateEventInput;
  if (typeof input.event_type !== 'string' || input.event_type === '') {
    return { ok: false, error: 'message has no `event_type`' };
  }
  input.event_source ??= EventSource.FRONTEND;
  input.event_category ??= categorizeFrontendEvent(null, input.event_type);
  if (input.event_id === undefined && input.idempotency_key === undefined) {
    input.idempotency_key = idempotencyKeyOf(messageIdOf(message));
  }
  return toEvent(input, message.time ?? now());
}
