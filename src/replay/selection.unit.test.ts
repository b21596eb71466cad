import { describe, expect, it } from 'vitest';
import { ValidationError } from '../domain/errors.js';
import { planReplay, replayedSubject, selectionView, type ReplayRequest } from './selection.js';

function problems(request: ReplayRequest): { path: string; message: string }[] {
  try {
    planReplay(request);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).errors;
  }
  throw new Error('expected a ValidationError');
}

describe('planReplay', () => {
  it('selects by event ids, stream or time range, with defaults', () => {
    expect(planReplay({ event_ids: ['a', 'b'] })).toEqual({
      selection: { event_ids: ['a', 'b'] },
      targetService: 'all',
      subject: 'event.replayed.all',
      reprocess: false,
      dryRun: false,
    });
    expect(planReplay({ stream_id: 'order:1', reprocess: true, dry_run: true })).toMatchObject({
      selection: { stream_id: 'order:1' },
      reprocess: true,
      dryRun: true,
    });
    expect(
      planReplay({
        start_time: '2024-03-01T10:00:00+02:00',
        end_time: '2024-03-01T09:00:00.5Z',
        event_type: 'order.paid',
        event_source: 'backend',
        target_service: 'analytics',
      }),
    ).toMatchObject({
      selection: {
        start_time: '2024-03-01T08:00:00.000Z',
        end_time: '2024-03-01T09:00:00.500Z',
        event_type: 'order.paid',
        event_source: 'backend',
      },
      subject: 'event.replayed.analytics',
    });
  });

  it("takes null for what is not given, as the seed's clients send it", () => {
    expect(
      planReplay({
        stream_id: 'user:1',
        event_ids: null,
        start_time: null,
        end_time: null,
        event_type: null,
        event_source: null,
        target_service: null,
      }),
    ).toMatchObject({ selection: { stream_id: 'user:1' }, targetService: 'all' });
  });

  it('lets several criteria narrow each other (the seed example: a stream within a time range)', () => {
    expect(
      planReplay({
        stream_id: 'user:user_123',
        start_time: '2025-12-01T00:00:00Z',
        end_time: '2025-12-31T23:59:59Z',
        target_service: 'analytics_service',
      }).selection,
    ).toEqual({
      stream_id: 'user:user_123',
      start_time: '2025-12-01T00:00:00.000Z',
      end_time: '2025-12-31T23:59:59.000Z',
    });
  });

  it('refuses a request that names no events', () => {
    expect(problems({})).toEqual([
      {
        path: 'body',
        message: 'must name the events to replay: event_ids, stream_id, or start_time with end_time',
      },
    ]);
    expect(problems({ event_type: 'x', dry_run: true }).map((p) => p.path)).toEqual(['body']);
  });

  it('needs both ends of a time range, in order', () => {
    expect(problems({ start_time: '2024-01-01T00:00:00Z' })).toEqual([
      { path: 'body.end_time', message: 'is required with start_time' },
    ]);
    expect(problems({ end_time: '2024-01-01T00:00:00Z' })).toEqual([
      { path: 'body.start_time', message: 'is required with end_time' },
    ]);
    expect(problems({ start_time: '2024-01-02T00:00:00Z', end_time: '2024-01-01T00:00:00Z' })).toEqual([
      { path: 'body.end_time', message: 'must not be before start_time' },
    ]);
    expect(problems({ start_time: '0000-01-01T00:00:00Z', end_time: '2024-01-01T00:00:00Z' })).toEqual([
      { path: 'body.start_time', message: 'is out of range' },
    ]);
    // One instant is a range.
    expect(
      planReplay({ start_time: '2024-01-01T00:00:00Z', end_time: '2024-01-01T00:00:00Z' }).selection,
    ).toMatchObject({ start_time: '2024-01-01T00:00:00.000Z', end_time: '2024-01-01T00:00:00.000Z' });
  });

  it('names every repeated event id', () => {
    expect(problems({ event_ids: ['a', 'b', 'a', 'c', 'b'] })).toEqual([
      { path: 'body.event_ids[2]', message: 'repeats body.event_ids[0]' },
      { path: 'body.event_ids[4]', message: 'repeats body.event_ids[1]' },
    ]);
  });

  it('refuses a blank target service and makes any other a single subject token', () => {
    expect(problems({ stream_id: 's:1', target_service: '   ' })).toEqual([
      { path: 'body.target_service', message: 'must not be blank' },
    ]);
    expect(replayedSubject('billing service.v2>*')).toBe('event.replayed.billing_service_v2_');
    expect(planReplay({ stream_id: 's:1', target_service: 'a.b' })).toMatchObject({
      targetService: 'a.b',
      subject: 'event.replayed.a_b',
    });
  });
});

describe('selectionView', () => {
  it('sums up a list of ids by its length', () => {
    expect(selectionView({ event_ids: ['a', 'b'], event_type: 't' })).toEqual({
      event_ids_count: 2,
      event_type: 't',
    });
    expect(selectionView({ stream_id: 's:1' })).toEqual({ stream_id: 's:1' });
  });
});
