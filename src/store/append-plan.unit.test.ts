import { describe, expect, it } from 'vitest';
import { normalizeCreate, type CreateEventInput, type NewEvent, type StoredEvent } from '../domain/event.js';
import { IdempotencyConflictError, VersionConflictError } from '../domain/errors.js';
import { planGroup, versionMatches, type ExistingEvent } from './append-plan.js';

const now = () => new Date('2025-01-01T00:00:00Z');
function ev(input: Partial<CreateEventInput> = {}): NewEvent {
  const result = normalizeCreate({ event_type: 't', ...input }, 'body', now);
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.event;
}
const none = new Map<string, ExistingEvent>();

describe('versionMatches', () => {
  it.each([
    ['any', 0, true],
    ['any', 5, true],
    ['no_stream', 0, true],
    ['no_stream', 1, false],
    ['stream_exists', 0, false],
    ['stream_exists', 3, true],
    [0, 0, true],
    [2, 2, true],
    [2, 3, false],
  ] as const)('%s at %i → %s', (expected, current, ok) => {
    expect(versionMatches(expected, current)).toBe(ok);
  });
});

describe('planGroup', () => {
  it('assigns consecutive versions across units and within a unit', () => {
    const plan = planGroup(
      [
        { events: [ev({ stream_id: 'a:1' }), ev({ stream_id: 'a:1' })] },
        { events: [ev({ stream_id: 'a:1' })] },
      ],
      none,
      none,
      new Map([['a:1', 4]]),
    );
    expect(plan.rows.map((r) => r.streamVersion)).toEqual([5, 6, 7]);
    expect(plan.streams.get('a:1')).toEqual({ version: 7, wasEmpty: false });
  });

  it('rejects a whole unit on a version conflict and keeps the others', () => {
    const plan = planGroup(
      [
        { events: [ev({ stream_id: 'a:1' }), ev({ stream_id: 'b:1', expected_version: 'stream_exists' })] },
        { events: [ev({ stream_id: 'a:1', expected_version: 0 })] },
      ],
      none,
      none,
      new Map(),
    );
    expect(plan.units[0]).toMatchObject({ type: 'reject' });
    expect((plan.units[0] as { error: unknown }).error).toBeInstanceOf(VersionConflictError);
    // the rejected unit's a:1 append did not happen, so the second unit sees version 0
    expect(plan.units[1]).toMatchObject({ type: 'append' });
    expect(plan.rows.map((r) => r.streamVersion)).toEqual([1]);
  });

  it('answers a repeat of a stored idempotency key with the stored event, and a changed one with a conflict', () => {
    const original = ev({ idempotency_key: 'k', data: { a: 1 } });
    const stored = { event_id: 'e1' } as StoredEvent;
    const existing = new Map([['k', { event: stored, contentHash: original.contentHash }]]);
    const plan = planGroup(
      [
        { events: [ev({ idempotency_key: 'k', data: { a: 1 } })] },
        { events: [ev({ idempotency_key: 'k', data: { a: 2 } })] },
      ],
      none,
      existing,
      new Map(),
    );
    expect(plan.units[0]).toEqual({ type: 'append', items: [{ type: 'stored', event: stored }] });
    expect((plan.units[1] as { error: unknown }).error).toBeInstanceOf(IdempotencyConflictError);
    expect(plan.rows).toHaveLength(0);
  });

  it('dedupes a client event id repeated within one group', () => {
    const plan = planGroup(
      [
        { events: [ev({ event_id: 'x', data: { a: 1 } })] },
        { events: [ev({ event_id: 'x', data: { a: 1 } })] },
      ],
      none,
      none,
      new Map(),
    );
    expect(plan.rows).toHaveLength(1);
    expect(plan.units[1]).toMatchObject({ type: 'append', items: [{ type: 'same-as' }] });
  });

  it('a repeat does not need to meet expected_version again', () => {
    const original = ev({ stream_id: 's:1', expected_version: 'no_stream', idempotency_key: 'k2' });
    const existing = new Map([
      ['k2', { event: { event_id: 'e' } as StoredEvent, contentHash: original.contentHash }],
    ]);
    const plan = planGroup([{ events: [original] }], none, existing, new Map([['s:1', 1]]));
    expect(plan.units[0]).toMatchObject({ type: 'append' });
  });
});
