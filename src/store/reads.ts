/** Reads of the event log: by id, by filter (offset or cursor pages), per stream. */
import type { EventCategory, EventSource, EventStatus, StoredEvent } from '../domain/event.js';
import type { Queryable } from './db.js';
import { EVENT_COLUMNS, EVENTS, LIVE_CLAIM, NO_LIVE_CLAIM } from './rows.js';
import { segmentRange, TIME_MAX, TIME_MIN } from './time-segments.js';

export interface EventFilter {
  user_id?: string;
  event_type?: string;
  event_types?: string[];
  event_source?: EventSource;
  event_category?: EventCategory;
  status?: EventStatus;
  correlation_id?: string;
  session_id?: string;
  organization_id?: string;
  device_id?: string;
  stream_id?: string;
  /** Inclusive. */
  start_time?: Date;
  /** Inclusive. */
  end_time?: Date;
}

export interface Cursor {
  timestamp: Date;
  position: number;
}

export interface PageRequest {
  limit: number;
  offset: number;
  cursor?: Cursor;
  includeTotal: boolean;
}

export interface EventPage {
  events: StoredEvent[];
  total: number | null;
  hasMore: boolean;
  nextCursor: Cursor | null;
}

/** Collects positional parameters while building a WHERE clause. */
export class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

const EQUALITY_FIELDS = [
  'user_id',
  'event_type',
  'event_source',
  'event_category',
  'status',
  'correlation_id',
  'session_id',
  'organization_id',
  'device_id',
  'stream_id',
] as const;

/** Filters the rollups can answer: they are keyed by these and by time. */
const ROLLUP_FIELDS = new Set(['event_type', 'event_types', 'event_source', 'event_category', 'status']);

export function dimensionConditions(filter: EventFilter, params: Params): string[] {
  const conditions: string[] = [];
  for (const field of EQUALITY_FIELDS) {
    const value = filter[field];
    if (value !== undefined) conditions.push(`${field} = ${params.add(value)}`);
  }
  if (filter.event_types !== undefined)
    conditions.push(`event_type = ANY(${params.add(filter.event_types)}::text[])`);
  return conditions;
}

/**
 * The status filter on event.events (not the rollups): waiting and dead-letter events are found
 * through narrow tables (migrations 0009, 0011), without scanning for a status no index covers.
 * An event under a live claim is `processing` (its stored status stays `pending`).
 */
function statusConditions(filter: EventFilter, params: Params): string[] {
  switch (filter.status) {
    case undefined:
      return [];
    case 'pending':
      return [
        `status = 'pending'`,
        `position IN (SELECT position FROM event.processing_queue WHERE ${NO_LIVE_CLAIM})`,
      ];
    case 'processing':
      return [
        `status = 'pending'`,
        `position IN (SELECT position FROM event.processing_queue WHERE ${LIVE_CLAIM})`,
      ];
    case 'failed':
      return [`status = 'failed'`, 'position IN (SELECT position FROM event.failed_events)'];
    default:
      return [`status = ${params.add(filter.status)}`];
  }
}

/** Conditions on event.events for a filter's dimensions and status. */
function eventConditions(filter: EventFilter, params: Params): string[] {
  return [
    ...dimensionConditions({ ...filter, status: undefined }, params),
    ...statusConditions(filter, params),
  ];
}

function timeConditions(from: number | undefined, to: number | undefined, params: Params): string[] {
  const conditions: string[] = [];
  if (from !== undefined)
    conditions.push(`"timestamp" >= ${params.add(new Date(from).toISOString())}::timestamptz`);
  if (to !== undefined)
    conditions.push(`"timestamp" < ${params.add(new Date(to).toISOString())}::timestamptz`);
  return conditions;
}

/** [from, to) in ms for a filter's inclusive start and end times. */
export function filterRange(filter: EventFilter): { from: number; to: number } {
  const clamp = (t: number) => Math.min(Math.max(t, TIME_MIN), TIME_MAX);
  return {
    from: clamp(filter.start_time?.getTime() ?? TIME_MIN),
    to: clamp(filter.end_time ? filter.end_time.getTime() + 1 : TIME_MAX),
  };
}

export function canUseRollups(filter: EventFilter): boolean {
  // The rollups count claimed events as pending: these two are told apart by the queue only.
  if (filter.status === 'pending' || filter.status === 'processing') return false;
  return Object.entries(filter).every(
    ([key, value]) =>
      value === undefined || ROLLUP_FIELDS.has(key) || key === 'start_time' || key === 'end_time',
  );
}

export function whereClause(conditions: string[]): string {
  return conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
}

export async function getEvent(db: Queryable, eventId: string): Promise<StoredEvent | null> {
  const result = await db.query<StoredEvent>(`SELECT ${EVENT_COLUMNS} FROM ${EVENTS} WHERE event_id = $1`, [
    eventId,
  ]);
  return result.rows[0] ?? null;
}

export async function queryEvents(db: Queryable, filter: EventFilter, page: PageRequest): Promise<EventPage> {
  const params = new Params();
  const { from, to } = filterRange(filter);
  const conditions = [
    ...eventConditions(filter, params),
    ...timeConditions(filter.start_time ? from : undefined, filter.end_time ? to : undefined, params),
  ];
  if (page.cursor) {
    conditions.push(
      `("timestamp", position) < (${params.add(page.cursor.timestamp.toISOString())}::timestamptz, ${params.add(page.cursor.position)}::bigint)`,
    );
  }
  const rows = await db.query<StoredEvent>(
    `SELECT ${EVENT_COLUMNS} FROM ${EVENTS} ${whereClause(conditions)}
     ORDER BY "timestamp" DESC, position DESC
     LIMIT ${params.add(page.limit + 1)} OFFSET ${params.add(page.offset)}`,
    params.values,
  );
  const hasMore = rows.rows.length > page.limit;
  const events = hasMore ? rows.rows.slice(0, page.limit) : rows.rows;
  const last = events[events.length - 1];
  return {
    events,
    total: page.includeTotal ? await countEvents(db, filter) : null,
    hasMore,
    nextCursor: hasMore && last ? { timestamp: last.timestamp, position: last.position } : null,
  };
}

/** Exact count; from the rollups (plus the sub-hour edges) when the filter allows it. */
export async function countEvents(db: Queryable, filter: EventFilter): Promise<number> {
  const { from, to } = filterRange(filter);
  if (!canUseRollups(filter)) {
    const params = new Params();
    const conditions = [
      ...eventConditions(filter, params),
      ...timeConditions(filter.start_time ? from : undefined, filter.end_time ? to : undefined, params),
    ];
    const result = await db.query<{ n: number }>(
      `SELECT count(*)::bigint AS n FROM ${EVENTS} ${whereClause(conditions)}`,
      params.values,
    );
    return result.rows[0]?.n ?? 0;
  }
  let total = 0;
  for (const segment of segmentRange(from, to)) {
    const params = new Params();
    let sql: string;
    let conditions: string[];
    if (segment.source === 'raw') {
      conditions = [...eventConditions(filter, params), ...timeConditions(segment.from, segment.to, params)];
      sql = `SELECT count(*)::bigint AS n FROM ${EVENTS} ${whereClause(conditions)}`;
    } else {
      conditions = dimensionConditions(filter, params);
      conditions.push(
        `bucket >= ${params.add(new Date(segment.from).toISOString())}::timestamptz`,
        `bucket < ${params.add(new Date(segment.to).toISOString())}::timestamptz`,
      );
      const table = segment.source === 'day' ? 'stats_daily' : 'stats_hourly';
      sql = `SELECT COALESCE(sum(event_count), 0)::bigint AS n FROM event.${table} ${whereClause(conditions)}`;
    }
    const result = await db.query<{ n: number }>(sql, params.values);
    total += result.rows[0]?.n ?? 0;
  }
  return total;
}

export interface StreamInfo {
  stream_id: string;
  stream_type: string;
  entity_type: string;
  entity_id: string;
  version: number;
  first_event_id: string | null;
  last_event_id: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface StreamRead {
  stream: StreamInfo;
  events: StoredEvent[];
}

export interface StreamList {
  streams: StreamInfo[];
  total: number;
}

export interface StreamListOptions {
  entityType?: string;
  limit: number;
  offset: number;
  /** Only streams with events of this user, described by those events alone (`userStreams`). */
  userId?: string;
}

/**
 * Streams that have events, in stream id order (with `entityType`, by entity id through the
 * `(entity_type, entity_id)` key), one page.
 */
export async function listStreams(db: Queryable, options: StreamListOptions): Promise<StreamList> {
  if (options.userId !== undefined) return userStreams(db, { ...options, userId: options.userId });
  const params = new Params();
  const conditions = ['version > 0'];
  if (options.entityType !== undefined) conditions.push(`entity_type = ${params.add(options.entityType)}`);
  const where = whereClause(conditions);
  const order = options.entityType !== undefined ? 'entity_id' : 'stream_id';
  const page = await db.query<StreamInfo>(
    `SELECT stream_id, stream_type, entity_type, entity_id, version, first_event_id, last_event_id, created_at,
       updated_at
     FROM event.event_streams ${where}
     ORDER BY ${order} LIMIT ${params.add(options.limit)} OFFSET ${params.add(options.offset)}`,
    params.values,
  );
  const total = await db.query<{ n: number }>(
    `SELECT count(*)::bigint AS n FROM event.event_streams ${where}`,
    params.values.slice(0, options.entityType !== undefined ? 1 : 0),
  );
  return { streams: page.rows, total: total.rows[0]?.n ?? 0 };
}

/**
 * The streams with events of one user, as that user may see them: `version` is the highest
 * version among its events, the first and last event ids and times are of its events. Nothing of
 * the other users' events of a shared stream shows.
 */
async function userStreams(
  db: Queryable,
  options: StreamListOptions & { userId: string },
): Promise<StreamList> {
  const params = new Params();
  const conditions = [`user_id = ${params.add(options.userId)}`, 'stream_id IS NOT NULL'];
  if (options.entityType !== undefined) conditions.push(`entity_type = ${params.add(options.entityType)}`);
  const where = whereClause(conditions);
  const filterValues = [...params.values];
  const order = options.entityType !== undefined ? 's.entity_id' : 's.stream_id';
  const page = await db.query<StreamInfo>(
    `SELECT s.stream_id, s.stream_type, s.entity_type, s.entity_id, o.version, o.first_event_id,
       o.last_event_id, o.created_at, o.updated_at
     FROM (SELECT stream_id, max(stream_version) AS version,
             (array_agg(event_id ORDER BY stream_version))[1] AS first_event_id,
             (array_agg(event_id ORDER BY stream_version DESC))[1] AS last_event_id,
             min(created_at) AS created_at, max(created_at) AS updated_at
           FROM event.events ${where} GROUP BY stream_id) o
     JOIN event.event_streams s ON s.stream_id = o.stream_id
     ORDER BY ${order} LIMIT ${params.add(options.limit)} OFFSET ${params.add(options.offset)}`,
    params.values,
  );
  const total = await db.query<{ n: number }>(
    `SELECT count(DISTINCT stream_id)::bigint AS n FROM event.events ${where}`,
    filterValues,
  );
  return { streams: page.rows, total: total.rows[0]?.n ?? 0 };
}

/**
 * Reads a stream forwards from `fromVersion` or backwards from it; null when it has no events.
 * With `userId`, only that user's events of the stream, and `version` is the highest among them
 * (null when the user has none): another user's events of a shared stream never show.
 */
export async function readStream(
  db: Queryable,
  streamId: string,
  options: { fromVersion?: number; direction: 'forward' | 'backward'; limit: number; userId?: string },
): Promise<StreamRead | null> {
  if (options.userId !== undefined)
    return readUserStream(db, streamId, { ...options, userId: options.userId });
  const info = await db.query<StreamInfo>(
    `SELECT stream_id, stream_type, entity_type, entity_id, version, first_event_id, last_event_id, created_at, updated_at
     FROM event.event_streams WHERE stream_id = $1 AND version > 0`,
    [streamId],
  );
  const stream = info.rows[0];
  if (!stream) return null;
  const forward = options.direction === 'forward';
  const from = options.fromVersion ?? (forward ? 1 : stream.version);
  const events = await db.query<StoredEvent>(
    `SELECT ${EVENT_COLUMNS} FROM ${EVENTS}
     WHERE stream_id = $1 AND stream_version ${forward ? '>=' : '<='} $2
     ORDER BY stream_version ${forward ? 'ASC' : 'DESC'} LIMIT $3`,
    [streamId, from, options.limit],
  );
  const newest = events.rows.reduce((max, e) => Math.max(max, e.stream_version ?? 0), stream.version);
  return { stream: { ...stream, version: newest }, events: events.rows };
}

async function readUserStream(
  db: Queryable,
  streamId: string,
  options: { fromVersion?: number; direction: 'forward' | 'backward'; limit: number; userId: string },
): Promise<StreamRead | null> {
  const info = await db.query<StreamInfo & { own_version: number | null }>(
    `SELECT s.stream_id, s.stream_type, s.entity_type, s.entity_id, s.created_at, s.updated_at,
       (SELECT max(stream_version) FROM event.events e WHERE e.stream_id = s.stream_id AND e.user_id = $2)
         AS own_version
     FROM event.event_streams s WHERE s.stream_id = $1`,
    [streamId, options.userId],
  );
  const row = info.rows[0];
  if (!row || row.own_version === null) return null;
  const { own_version: version, ...stream } = row;
  const forward = options.direction === 'forward';
  const from = options.fromVersion ?? (forward ? 1 : version);
  const events = await db.query<StoredEvent>(
    `SELECT ${EVENT_COLUMNS} FROM ${EVENTS}
     WHERE stream_id = $1 AND user_id = $4 AND stream_version ${forward ? '>=' : '<='} $2
     ORDER BY stream_version ${forward ? 'ASC' : 'DESC'} LIMIT $3`,
    [streamId, from, options.limit, options.userId],
  );
  return { stream: { ...stream, version, first_event_id: null, last_event_id: null }, events: events.rows };
}

/**
 * Whether every event of a stream is of this user (and it has at least one): a projection folds
 * the whole stream, so a user-bound principal may read it only then.
 */
export async function streamOwnedBy(db: Queryable, streamId: string, userId: string): Promise<boolean> {
  const result = await db.query<{ owned: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM event.events WHERE stream_id = $1 AND user_id = $2)
       AND NOT EXISTS (SELECT 1 FROM event.events WHERE stream_id = $1 AND user_id IS DISTINCT FROM $2)
       AS owned`,
    [streamId, userId],
  );
  return result.rows[0]?.owned === true;
}
