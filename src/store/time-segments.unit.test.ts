import { describe, expect, it } from 'vitest';
import { segmentRange } from './time-segments.js';

const t = (iso: string) => Date.parse(iso);
const H = 3_600_000;

describe('segmentRange', () => {
  it('is empty for an empty range', () => {
    expect(segmentRange(10, 10)).toEqual([]);
  });
  it('keeps a range inside one hour raw', () => {
    expect(segmentRange(t('2025-01-01T10:05:00Z'), t('2025-01-01T10:55:00Z'))).toEqual([
      { source: 'raw', from: t('2025-01-01T10:05:00Z'), to: t('2025-01-01T10:55:00Z') },
    ]);
  });
  it('uses days, hours and raw edges', () => {
    const segments = segmentRange(t('2025-01-01T22:30:00Z'), t('2025-01-04T01:15:00Z'));
    expect(segments).toEqual([
      { source: 'raw', from: t('2025-01-01T22:30:00Z'), to: t('2025-01-01T23:00:00Z') },
      { source: 'hour', from: t('2025-01-01T23:00:00Z'), to: t('2025-01-02T00:00:00Z') },
      { source: 'day', from: t('2025-01-02T00:00:00Z'), to: t('2025-01-04T00:00:00Z') },
      { source: 'hour', from: t('2025-01-04T00:00:00Z'), to: t('2025-01-04T01:00:00Z') },
      { source: 'raw', from: t('2025-01-04T01:00:00Z'), to: t('2025-01-04T01:15:00Z') },
    ]);
  });
  it('covers any range exactly once, without overlap', () => {
    for (let i = 0; i < 500; i++) {
      const from = t('2025-01-01T00:00:00Z') + Math.floor(Math.random() * 200 * H);
      const to = from + Math.floor(Math.random() * 100 * H);
      const segments = segmentRange(from, to);
      let cursor = from;
      for (const s of segments) {
        expect(s.from).toBe(cursor);
        expect(s.to).toBeGreaterThan(s.from);
        if (s.source === 'hour') expect(s.from % H).toBe(0);
        if (s.source === 'day') expect(s.from % (24 * H)).toBe(0);
        cursor = s.to;
      }
      expect(cursor).toBe(segments.length ? to : from);
    }
  });
});
