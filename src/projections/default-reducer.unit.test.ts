import { describe, expect, it } from 'vitest';
import { fold, type Folded, type FoldedEvent } from './default-reducer.js';

const event = (version: number, type: string, data: unknown): FoldedEvent => ({
  event_id: `e${version}`,
  event_type: type,
  data,
  stream_version: version,
  created_at: new Date(1_700_000_000_000 + version),
});
const EMPTY: Folded = { state: {}, version: 0, last_event_id: null, last_event_at: null };

describe('default projection fold', () => {
  it('keeps the latest data per event type; version counts the events', () => {
    const folded = fold(
      EMPTY,
      [
        event(1, 'cart.created', { id: 1 }),
        event(2, 'item.added', { sku: 'a' }),
        event(3, 'item.added', { sku: 'b' }),
      ],
      100,
    );
    expect(folded).toEqual({
      state: { 'cart.created': { id: 1 }, 'item.added': { sku: 'b' } },
      version: 3,
      last_event_id: 'e3',
      last_event_at: new Date(1_700_000_000_003),
    });
  });

  it('continues from a snapshot as if it had folded from the start, and reports each boundary', () => {
    const events = Array.from({ length: 25 }, (_, i) => event(i + 1, `t${i % 4}`, { i }));
    const seen: number[] = [];
    const whole = fold(EMPTY, events, 10, (f) => seen.push(f.version));
    expect(seen).toEqual([10, 20]);
    const atTen = fold(EMPTY, events.slice(0, 10), 10);
    expect(fold(atTen, events.slice(10), 10)).toEqual(whole);
  });

  it('does not change the state it continues from', () => {
    const start: Folded = { state: { a: 1 }, version: 1, last_event_id: 'e1', last_event_at: new Date(0) };
    fold(start, [event(2, 'a', 2)], 100);
    expect(start.state).toEqual({ a: 1 });
  });
});
