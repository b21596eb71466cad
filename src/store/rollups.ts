/**
 * Statistics rollups, kept in the same transaction as the change they count: appends add to
 * them (in the INSERT statement itself), status changes move counts between statuses.
 */
import type { StoredEvent } from '../domain/event.js';
import { prepared, type Queryable } from './db.js';

interface Delta {
  eventSource: string;
  eventCategory: string;
  eventType: string;
  status: string;
  count: number;
  processingMs: number;
  processingCount: number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export function bucketOf(time: Date, size: number): number {
  return Math.floor(time.getTime() / size) * size;
}

/**
 * Rollup rows are locked in one order by every statement that changes them (appends and status
 * moves): hourly rows before daily rows (two CTEs of one statement, in this order), and within a
 * table by this key order, so that concurrent transactions cannot deadlock on them.
 */
const KEY_ORDER = `bucket, event_source COLLATE "C", event_category COLLATE "C", event_type COLLATE "C",
  status COLLATE "C"`;

/**
 * CTEs that count newly appended events, for the statement that inserts them: `rows` names an
 * earlier CTE (the INSERT's RETURNING) with the event columns. Buckets are UTC hours and days.
 */
export function appendRollupCtes(rows: string): string {
  const bucketed = (table: 'stats_hourly' | 'stats_daily', unit: 'hour' | 'day') => `
  ${table} AS (
    INSERT INTO event.${table} AS t (bucket, event_source, event_category, event_type, status, event_count,
      processing_ms_sum, processing_count)
    SELECT bucket, event_source, event_category, event_type, status, event_count, 0, 0
    FROM (SELECT date_trunc('${unit}', "timestamp", 'UTC') AS bucket, event_source, event_category, event_type,
            status, count(*) AS event_count
          FROM ${rows} GROUP BY 1, 2, 3, 4, 5) AS d
    ORDER BY ${KEY_ORDER}
    ON CONFLICT (bucket, event_source, event_category, event_type, status) DO UPDATE
    SET event_count = t.event_count + excluded.event_count
  )`;
  return `${bucketed('stats_hourly', 'hour')},${bucketed('stats_daily', 'day')},
  stats_users AS (
    INSERT INTO event.stats_users AS t (user_id, event_count)
    SELECT user_id, count(*) FROM ${rows} WHERE user_id IS NOT NULL
    GROUP BY user_id ORDER BY user_id COLLATE "C"
    ON CONFLICT (user_id) DO UPDATE SET event_count = t.event_count + excluded.event_count
  )`;
}

/**
 * One event changing status. `processingMs` (processed_at - created_at) is added to the
 * processing-time sums when the event becomes `processed`; `previousProcessingMs` is taken out of
 * them when it stops being `processed`.
 */
export interface StatusMove {
  event: Pick<StoredEvent, 'timestamp' | 'event_source' | 'event_category' | 'event_type'>;
  from: string;
  to: string;
  processingMs?: number;
  previousProcessingMs?: number;
}

/** Nets status moves into per-bucket deltas (per bucket, dimensions and status); pure, exported for tests. */
export function moveDeltas(
  moves: readonly StatusMove[],
  size: number,
): Map<string, Delta & { bucket: number }> {
  const out = new Map<string, Delta & { bucket: number }>();
  const add = (move: StatusMove, status: string, count: number, ms: number, msCount: number) => {
    const bucket = bucketOf(move.event.timestamp, size);
    const { event_source, event_category, event_type } = move.event;
    const key = [bucket, event_source, event_category, event_type, status].join('\u0001');
    const entry = out.get(key);
    if (entry) {
      entry.count += count;
      entry.processingMs += ms;
      entry.processingCount += msCount;
    } else {
      out.set(key, {
        bucket,
        eventSource: event_source,
        eventCategory: event_category,
        eventType: event_type,
        status,
        count,
        processingMs: ms,
        processingCount: msCount,
      });
    }
  };
  for (const move of moves) {
    if (move.from === move.to) continue;
    const leaving = move.from === 'processed' && move.previousProcessingMs !== undefined;
    add(move, move.from, -1, leaving ? -move.previousProcessingMs! : 0, leaving ? -1 : 0);
    const arriving = move.to === 'processed' && move.processingMs !== undefined;
    add(move, move.to, 1, arriving ? move.processingMs! : 0, arriving ? 1 : 0);
  }
  for (const [key, delta] of out) {
    if (delta.count === 0 && delta.processingMs === 0 && delta.processingCount === 0) out.delete(key);
  }
  return out;
}

/**
 * Moves status counts (and processing-time sums) in the caller's transaction, the one that
 * changes the events' status, so statistics stay exact. One statement, locking rows in the same
 * order as appends (KEY_ORDER).
 */
export async function moveStatus(tx: Queryable, moves: readonly StatusMove[]): Promise<void> {
  if (moves.length === 0) return;
  const hourly = [...moveDeltas(moves, HOUR).values()];
  const daily = [...moveDeltas(moves, DAY).values()];
  if (hourly.length === 0 && daily.length === 0) return;
  const upsert = (table: 'stats_hourly' | 'stats_daily', first: number) => `
  ${table} AS (
    INSERT INTO event.${table} AS t (bucket, event_source, event_category, event_type, status, event_count,
      processing_ms_sum, processing_count)
    SELECT to_timestamp(d.bucket / 1000.0) AS bucket, d.event_source, d.event_category, d.event_type, d.status,
      d.event_count, d.processing_ms_sum, d.processing_count
    FROM unnest($${first}::bigint[], $${first + 1}::text[], $${first + 2}::text[], $${first + 3}::text[],
      $${first + 4}::text[], $${first + 5}::bigint[], $${first + 6}::float8[], $${first + 7}::bigint[])
      AS d(bucket, event_source, event_category, event_type, status, event_count, processing_ms_sum,
        processing_count)
    ORDER BY ${KEY_ORDER}
    ON CONFLICT (bucket, event_source, event_category, event_type, status) DO UPDATE
    SET event_count = t.event_count + excluded.event_count,
        processing_ms_sum = t.processing_ms_sum + excluded.processing_ms_sum,
        processing_count = t.processing_count + excluded.processing_count
  )`;
  const columns = (deltas: (Delta & { bucket: number })[]) => [
    deltas.map((d) => d.bucket),
    deltas.map((d) => d.eventSource),
    deltas.map((d) => d.eventCategory),
    deltas.map((d) => d.eventType),
    deltas.map((d) => d.status),
    deltas.map((d) => d.count),
    deltas.map((d) => d.processingMs),
    deltas.map((d) => d.processingCount),
  ];
  await tx.query(prepared(`WITH ${upsert('stats_hourly', 1)},${upsert('stats_daily', 9)} SELECT 1`), [
    ...columns(hourly),
    ...columns(daily),
  ]);
}

export const BUCKET = { HOUR, DAY } as const;
