/**
 * Statistics rollups, kept in the same transaction as the change they count: appends add to
 * them, status changes move counts between statuses. Keys are upserted in sorted order so that
 * concurrent transactions take row locks in the same order and cannot deadlock.
 */
import type { StoredEvent } from '../domain/event.js';
import type { Queryable } from './db.js';

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

/** Aggregates per bucket and dimension key; pure, exported for tests. */
export function aggregate(
  events: readonly StoredEvent[],
  size: number,
  status: (event: StoredEvent) => string = (event) => event.status,
  sign = 1,
): Map<string, Delta & { bucket: number }> {
  const out = new Map<string, Delta & { bucket: number }>();
  for (const event of events) {
    const bucket = bucketOf(event.timestamp, size);
    const key = [bucket, event.event_source, event.event_category, event.event_type, status(event)].join(
      '\u0001',
    );
    const entry = out.get(key);
    if (entry) {
      entry.count += sign;
    } else {
      out.set(key, {
        bucket,
        eventSource: event.event_source,
        eventCategory: event.event_category,
        eventType: event.event_type,
        status: status(event),
        count: sign,
        processingMs: 0,
        processingCount: 0,
      });
    }
  }
  return out;
}

async function upsert(
  tx: Queryable,
  table: 'stats_hourly' | 'stats_daily',
  deltas: Map<string, Delta & { bucket: number }>,
) {
  if (deltas.size === 0) return;
  const rows = [...deltas.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, d]) => d);
  await tx.query(
    `INSERT INTO event.${table} AS t (bucket, event_source, event_category, event_type, status, event_count,
       processing_ms_sum, processing_count)
     SELECT to_timestamp(d.bucket / 1000.0), d.event_source, d.event_category, d.event_type, d.status, d.event_count,
       d.processing_ms_sum, d.processing_count
     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::float8[], $8::bigint[])
       WITH ORDINALITY AS d(bucket, event_source, event_category, event_type, status, event_count, processing_ms_sum,
         processing_count, ord)
     ORDER BY d.ord
     ON CONFLICT (bucket, event_source, event_category, event_type, status) DO UPDATE
     SET event_count = t.event_count + excluded.event_count,
         processing_ms_sum = t.processing_ms_sum + excluded.processing_ms_sum,
         processing_count = t.processing_count + excluded.processing_count`,
    [
      rows.map((d) => d.bucket),
      rows.map((d) => d.eventSource),
      rows.map((d) => d.eventCategory),
      rows.map((d) => d.eventType),
      rows.map((d) => d.status),
      rows.map((d) => d.count),
      rows.map((d) => d.processingMs),
      rows.map((d) => d.processingCount),
    ],
  );
}

/** Counts newly appended events. */
export async function addToRollups(tx: Queryable, events: readonly StoredEvent[]): Promise<void> {
  if (events.length === 0) return;
  await upsert(tx, 'stats_hourly', aggregate(events, HOUR));
  await upsert(tx, 'stats_daily', aggregate(events, DAY));
  const perUser = new Map<string, number>();
  for (const event of events) {
    if (event.user_id !== null) perUser.set(event.user_id, (perUser.get(event.user_id) ?? 0) + 1);
  }
  if (perUser.size === 0) return;
  const users = [...perUser.keys()].sort();
  await tx.query(
    `INSERT INTO event.stats_users AS t (user_id, event_count)
     SELECT u.user_id, u.event_count FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS u(user_id, event_count, ord)
     ORDER BY u.ord
     ON CONFLICT (user_id) DO UPDATE SET event_count = t.event_count + excluded.event_count`,
    [users, users.map((user) => perUser.get(user))],
  );
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

/** Nets status moves into per-bucket deltas (keys as `aggregate`'s); pure, exported for tests. */
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
 * changes the events' status, so statistics stay exact. Same lock order as appends: hourly rows,
 * then daily rows, each in sorted key order.
 */
export async function moveStatus(tx: Queryable, moves: readonly StatusMove[]): Promise<void> {
  if (moves.length === 0) return;
  await upsert(tx, 'stats_hourly', moveDeltas(moves, HOUR));
  await upsert(tx, 'stats_daily', moveDeltas(moves, DAY));
}

export const BUCKET = { HOUR, DAY } as const;
