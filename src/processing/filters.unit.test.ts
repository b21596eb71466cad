import { describe, expect, it } from 'vitest';
import {
  filterProblems,
  matchesFilters,
  patternProblem,
  selectProcessors,
  type Selectable,
} from './filters.js';

const event = (event_type: string, event_source = 'backend', event_category = 'user_action') =>
  ({ event_type, event_source, event_category }) as never;

describe('patternProblem', () => {
  it('accepts NATS-style patterns', () => {
    for (const pattern of ['user.created', 'user.*', 'order.>', '*', '>', '*.created', 'a.*.c.>']) {
      expect(patternProblem(pattern), pattern).toBeNull();
    }
  });
  it('refuses empty tokens, inner `>`, partial wildcards and spaces', () => {
    for (const pattern of ['', 'user.', '.user', 'a..b', 'a.>.b', 'us*er', 'user.cr>', 'a b']) {
      expect(patternProblem(pattern), pattern).not.toBeNull();
    }
  });
});

describe('matchesFilters', () => {
  it('no filter matches everything', () => {
    expect(matchesFilters({}, event('anything.at.all'))).toBe(true);
  });
  it('`*` is one token, `>` one or more', () => {
    expect(matchesFilters({ event_type: 'user.*' }, event('user.created'))).toBe(true);
    expect(matchesFilters({ event_type: 'user.*' }, event('user.created.v2'))).toBe(false);
    expect(matchesFilters({ event_type: 'user.*' }, event('user'))).toBe(false);
    expect(matchesFilters({ event_type: 'user.>' }, event('user.created.v2'))).toBe(true);
    expect(matchesFilters({ event_type: 'user.>' }, event('user'))).toBe(false);
    expect(matchesFilters({ event_type: 'user.created' }, event('user.created'))).toBe(true);
    expect(matchesFilters({ event_type: 'user.created' }, event('user.deleted'))).toBe(false);
  });
  it('event_types: any of them', () => {
    const filters = { event_types: ['order.*', 'payment.>'] };
    expect(matchesFilters(filters, event('order.paid'))).toBe(true);
    expect(matchesFilters(filters, event('payment.card.failed'))).toBe(true);
    expect(matchesFilters(filters, event('user.created'))).toBe(false);
  });
  it('every filter given must match', () => {
    const filters = { event_type: 'order.*', event_source: 'backend', event_category: ['order', 'payment'] };
    expect(matchesFilters(filters, event('order.paid', 'backend', 'order'))).toBe(true);
    expect(matchesFilters(filters, event('order.paid', 'frontend', 'order'))).toBe(false);
    expect(matchesFilters(filters, event('order.paid', 'backend', 'click'))).toBe(false);
    expect(matchesFilters(filters, event('user.paid', 'backend', 'order'))).toBe(false);
  });
  it('event_type and event_types together: both must match', () => {
    const filters = { event_type: 'order.>', event_types: ['*.paid'] };
    expect(matchesFilters(filters, event('order.paid'))).toBe(true);
    expect(matchesFilters(filters, event('order.refunded'))).toBe(false);
  });
});

describe('filterProblems', () => {
  it('names each bad field', () => {
    expect(
      filterProblems({
        event_type: 'a..b',
        event_types: ['ok.*', 'x.>.y'],
        event_source: ['backend', 'mars'],
        event_category: 'nope',
      }).map((p) => p.path),
    ).toEqual([
      'body.filters.event_type',
      'body.filters.event_types[1]',
      'body.filters.event_source[1]',
      'body.filters.event_category',
    ]);
  });
  it('accepts valid filters', () => {
    expect(
      filterProblems({ event_type: 'user.*', event_source: 'frontend', event_category: ['click'] }),
    ).toEqual([]);
  });
});

describe('selectProcessors', () => {
  const p = (name: string, priority: number, extra: Partial<Selectable> = {}): Selectable => ({
    processor_id: name,
    processor_name: name,
    priority,
    enabled: true,
    filters: {},
    ...extra,
  });
  it('keeps enabled matching processors, highest priority first, then by name', () => {
    const chosen = selectProcessors(
      [
        p('low', 1),
        p('high', 10),
        p('b-mid', 5),
        p('a-mid', 5),
        p('off', 100, { enabled: false }),
        p('other', 50, { filters: { event_type: 'order.*' } }),
      ],
      event('user.created'),
    );
    expect(chosen.map((c) => c.processor_name)).toEqual(['high', 'a-mid', 'b-mid', 'low']);
  });
});
