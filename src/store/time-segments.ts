/**
 * Splits a time range into pieces answerable from rollups: whole UTC days from the daily rollup,
 * whole hours from the hourly one, and the sub-hour edges from the events table. Pure.
 */
import { BUCKET } from './rollups.js';

export type SegmentSource = 'day' | 'hour' | 'raw';

export interface Segment {
  source: SegmentSource;
  /** Inclusive start, ms since epoch. */
  from: number;
  /** Exclusive end, ms since epoch. */
  to: number;
}

export { TIME_MAX, TIME_MIN } from '../domain/event.js';

const ceilTo = (t: number, size: number) => Math.ceil(t / size) * size;
const floorTo = (t: number, size: number) => Math.floor(t / size) * size;

export function segmentRange(from: number, to: number): Segment[] {
  if (to <= from) return [];
  const h1 = ceilTo(from, BUCKET.HOUR);
  const h2 = floorTo(to, BUCKET.HOUR);
  if (h1 >= h2) return [{ source: 'raw', from, to }];
  const out: Segment[] = [];
  if (from < h1) out.push({ source: 'raw', from, to: h1 });
  const d1 = ceilTo(h1, BUCKET.DAY);
  const d2 = floorTo(h2, BUCKET.DAY);
  if (d1 < d2) {
    if (h1 < d1) out.push({ source: 'hour', from: h1, to: d1 });
    out.push({ source: 'day', from: d1, to: d2 });
    if (d2 < h2) out.push({ source: 'hour', from: d2, to: h2 });
  } else {
    out.push({ source: 'hour', from: h1, to: h2 });
  }
  if (h2 < to) out.push({ source: 'raw', from: h2, to });
  return out;
}
