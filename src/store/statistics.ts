/**
 * Statistics of PRD §5.2. Without a user filter they come from the rollups (whole days and hours)
 * plus the sub-hour edges of a time range from the events table, so their cost does not grow with
 * the number of stored events. With a user filter they aggregate that user's events through the
 * (user_id, timestamp) index.
 */
import { EventStatus } from '../domain/event.js';
import type { Queryable } from './db.js';
import { BUCKET } from './rollups.js';
import { filterRange, Params, whereClause } from './reads.js';
import { segmentRange, type Segment } from './time-segments.js';
import { EVENTS, LIVE_CLAIM } from './rows.js';

export interface StatisticsFilter {
  user_id?: string;
  start_time?: Date;
  end_time?: Date;
}

export interface Statistics {
  total_events: number;
  pending_events: number;
  processing_events: number;
  processed_events: number;
  failed_events: number;
  archived_events: number;
  events_by_source: Record<string, number>;
  events_by_category: Record<string, number>;
  events_by_type: Record<string, number>;
  events_by_status: Record<string, number>;
  events_today: number;
  events_this_week: number;
  events_this_month: number;
  /** Milliseconds from creation to processing, over processed events. */
  average_processing_time: number;
  /** Percent of events processed. */
  processing_rate: number;
  /** Percent of events failed. */
  error_rate: number;
  top_users: { user_id: string; event_count: number }[];
  top_event_types: { event_type: string; event_count: number }[];
  user_id: string | null;
  start_time: Date | null;
  end_time: Date | null;
  generated_at: Date;
}

interface Row {
  event_source: string;
  event_category: string;
  event_type: string;
  status: string;
  total: number;
  today: number;
  week: number;
  month: number;
  ms_sum: number;
  ms_count: number;
}

export const TOP_N = 10;
/** events_by_type is cut to the most frequent types beyond this many. */
export const MAX_TYPES = 1000;

function periodStarts(now: Date): { today: string; week: string; month: string } {
  const today = Math.floor(now.getTime() / BUCKET.DAY) * BUCKET.DAY;
  return {
    today: new Date(today).toISOString(),
    week: new Date(today - 7 * BUCKET.DAY).toISOString(),
    month: new Date(today - 30 * BUCKET.DAY).toISOString(),
  };
}

async function segmentRows(
  db: Queryable,
  segment: Segment,
  filter: StatisticsFilter,
  now: Date,
): Promise<Row[]> {
  const params = new Params();
  const starts = periodStarts(now);
  const from = params.add(new Date(segment.from).toISOString());
  const to = params.add(new Date(segment.to).toISOString());
  const [today, week, month] = [params.add(starts.today), params.add(starts.week), params.add(starts.month)];
  if (segment.source === 'raw') {
    const conditions = [`"timestamp" >= ${from}::timestamptz`, `"timestamp" < ${to}::timestamptz`];
    if (filter.user_id !== undefined) conditions.push(`user_id = ${params.add(filter.user_id)}`);
    const done = `status = '${EventStatus.PROCESSED}' AND processed_at IS NOT NULL`;
    const result = await db.query<Row>(
      `SELECT event_source, event_category, event_type, status,
         count(*)::bigint AS total,
         (count(*) FILTER (WHERE "timestamp" >= ${today}::timestamptz))::bigint AS today,
         (count(*) FILTER (WHERE "timestamp" >= ${week}::timestamptz))::bigint AS week,
         (count(*) FILTER (WHERE "timestamp" >= ${month}::timestamptz))::bigint AS month,
         COALESCE(sum(extract(epoch FROM processed_at - created_at) * 1000) FILTER (WHERE ${done}), 0)::float8 AS ms_sum,
         (count(*) FILTER (WHERE ${done}))::bigint AS ms_count
       FROM ${EVENTS} ${whereClause(conditions)}
       GROUP BY 1, 2, 3, 4`,
      params.values,
    );
    return result.rows;
  }
  const table = segment.source === 'day' ? 'stats_daily' : 'stats_hourly';
  const result = await db.query<Row>(
    `SELECT event_source, event_category, event_type, status,
       sum(event_count)::bigint AS total,
       COALESCE(sum(event_count) FILTER (WHERE bucket >= ${today}::timestamptz), 0)::bigint AS today,
       COALESCE(sum(event_count) FILTER (WHERE bucket >= ${week}::timestamptz), 0)::bigint AS week,
       COALESCE(sum(event_count) FILTER (WHERE bucket >= ${month}::timestamptz), 0)::bigint AS month,
       sum(processing_ms_sum)::float8 AS ms_sum,
       sum(processing_count)::bigint AS ms_count
     FROM event.${table}
     WHERE bucket >= ${from}::timestamptz AND bucket < ${to}::timestamptz
     GROUP BY 1, 2, 3, 4`,
    params.values,
  );
  return result.rows;
}

async function topUsers(db: Queryable, filter: StatisticsFilter, from: number, to: number, total: number) {
  if (filter.user_id !== undefined) {
    return total > 0 ? [{ user_id: filter.user_id, event_count: total }] : [];
  }
  if (filter.start_time === undefined && filter.end_time === undefined) {
    const result = await db.query<{ user_id: string; event_count: number }>(
      `SELECT user_id, event_count FROM event.stats_users WHERE event_count > 0
       ORDER BY event_count DESC, user_id LIMIT ${TOP_N}`,
    );
    return result.rows;
  }
  const result = await db.query<{ user_id: string; event_count: number }>(
    `SELECT user_id, count(*)::bigint AS event_count FROM event.events
     WHERE user_id IS NOT NULL AND "timestamp" >= $1::timestamptz AND "timestamp" < $2::timestamptz
     GROUP BY user_id ORDER BY 2 DESC, 1 LIMIT ${TOP_N}`,
    [new Date(from).toISOString(), new Date(to).toISOString()],
  );
  return result.rows;
}

/** Events of the filter's range under a live claim (read through the queue, which is small). */
async function claimedCount(
  db: Queryable,
  filter: StatisticsFilter,
  from: number,
  to: number,
): Promise<number> {
  const params = [new Date(from).toISOString(), new Date(to).toISOString()];
  if (filter.user_id !== undefined) params.push(filter.user_id);
  const result = await db.query<{ n: number }>(
    `SELECT count(*)::bigint AS n
     FROM event.processing_queue AS q JOIN event.events_current AS e ON e.position = q.position
     WHERE ${LIVE_CLAIM} AND e.status = 'pending'
       AND e."timestamp" >= $1::timestamptz AND e."timestamp" < $2::timestamptz
       ${filter.user_id !== undefined ? 'AND e.user_id = $3' : ''}`,
    params,
  );
  return Number(result.rows[0]?.n ?? 0);
}

const percent = (part: number, whole: number) =>
  whole === 0 ? 0 : Math.round((part / whole) * 100_000) / 1000;

export async function getStatistics(db: Queryable, filter: StatisticsFilter, now: Date): Promise<Statistics> {
  const { from, to } = filterRange(filter);
  const segments: Segment[] =
    filter.user_id !== undefined ? [{ source: 'raw', from, to }] : segmentRange(from, to);
  const rows = (await Promise.all(segments.map((segment) => segmentRows(db, segment, filter, now)))).flat();

  const bySource: Record<string, number> = {};
  const byCategory: Record<string, number> = {};
  const byType: Record<string, number> = {};
  const byStatus: Record<string, number> = {};
  let total = 0;
  let today = 0;
  let week = 0;
  let month = 0;
  let msSum = 0;
  let msCount = 0;
  const add = (map: Record<string, number>, key: string, n: number) => (map[key] = (map[key] ?? 0) + n);
  for (const row of rows) {
    if (row.total === 0) continue;
    total += row.total;
    today += row.today;
    week += row.week;
    month += row.month;
    msSum += row.ms_sum;
    msCount += row.ms_count;
    add(bySource, row.event_source, row.total);
    add(byCategory, row.event_category, row.total);
    add(byType, row.event_type, row.total);
    add(byStatus, row.status, row.total);
  }
  // Counted as pending (a claim moves no rollup): those under a live claim are processing.
  const claimed = await claimedCount(db, filter, from, to);
  if (claimed > 0) {
    add(byStatus, EventStatus.PENDING, -claimed);
    add(byStatus, EventStatus.PROCESSING, claimed);
    if (byStatus[EventStatus.PENDING] === 0) delete byStatus[EventStatus.PENDING];
  }
  const types = Object.entries(byType).sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1));
  const status = (s: string) => byStatus[s] ?? 0;
  return {
    total_events: total,
    pending_events: status(EventStatus.PENDING),
    processing_events: status(EventStatus.PROCESSING),
    processed_events: status(EventStatus.PROCESSED),
    failed_events: status(EventStatus.FAILED),
    archived_events: status(EventStatus.ARCHIVED),
    events_by_source: bySource,
    events_by_category: byCategory,
    events_by_type: Object.fromEntries(types.slice(0, MAX_TYPES)),
    events_by_status: byStatus,
    events_today: today,
    events_this_week: week,
    events_this_month: month,
    average_processing_time: msCount === 0 ? 0 : Math.round((msSum / msCount) * 1000) / 1000,
    processing_rate: percent(status(EventStatus.PROCESSED), total),
    error_rate: percent(status(EventStatus.FAILED), total),
    top_users: await topUsers(db, filter, from, to, total),
    top_event_types: types.slice(0, TOP_N).map(([event_type, event_count]) => ({ event_type, event_count })),
    user_id: filter.user_id ?? null,
    start_time: filter.start_time ?? null,
    end_time: filter.end_time ?? null,
    generated_at: now,
  };
}
