import { describe, expect, it } from 'vitest';
import { BUCKET, moveDeltas } from './rollups.js';

const event = (type: string, iso = '2024-05-01T10:15:00Z') =>
  ({
    timestamp: new Date(iso),
    event_source: 'backend',
    event_category: 'system',
    event_type: type,
  }) as const;

describe('moveDeltas', () => {
  it('takes one from the old status and adds one to the new, per bucket and dimensions', () => {
    const deltas = [
      ...moveDeltas(
        [
          { event: event('a'), from: 'pending', to: 'processing' },
          { event: event('a'), from: 'pending', to: 'processing' },
          { event: event('b', '2024-05-01T11:00:00Z'), from: 'pending', to: 'processing' },
        ],
        BUCKET.HOUR,
      ).values(),
    ];
    expect(deltas.map((d) => [d.eventType, d.status, d.count, new Date(d.bucket).toISOString()])).toEqual([
      ['a', 'pending', -2, '2024-05-01T10:00:00.000Z'],
      ['a', 'processing', 2, '2024-05-01T10:00:00.000Z'],
      ['b', 'pending', -1, '2024-05-01T11:00:00.000Z'],
      ['b', 'processing', 1, '2024-05-01T11:00:00.000Z'],
    ]);
  });
  it('adds processing time when an event becomes processed, and takes it out when it leaves', () => {
    const [out, into] = [
      ...moveDeltas(
        [{ event: event('a'), from: 'processing', to: 'processed', processingMs: 120 }],
        BUCKET.DAY,
      ).values(),
    ];
    expect(out).toMatchObject({ status: 'processing', count: -1, processingMs: 0, processingCount: 0 });
    expect(into).toMatchObject({ status: 'processed', count: 1, processingMs: 120, processingCount: 1 });
    const back = [
      ...moveDeltas(
        [{ event: event('a'), from: 'processed', to: 'pending', previousProcessingMs: 120 }],
        BUCKET.DAY,
      ).values(),
    ];
    expect(back[0]).toMatchObject({
      status: 'processed',
      count: -1,
      processingMs: -120,
      processingCount: -1,
    });
  });
  it('moves that cancel out leave nothing to write', () => {
    expect(
      moveDeltas(
        [
          { event: event('a'), from: 'pending', to: 'processing' },
          { event: event('a'), from: 'processing', to: 'pending' },
          { event: event('a'), from: 'failed', to: 'failed' },
        ],
        BUCKET.HOUR,
      ).size,
    ).toBe(0);
  });
});
