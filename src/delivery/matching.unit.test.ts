import { describe, expect, it } from 'vitest';
import { matchesSubscription, patternProblem } from './matching.js';

const event = (event_type: string, event_source = 'backend', event_category = 'user_lifecycle') => ({
  event_type,
  event_source,
  event_category,
});

describe('subscription matching', () => {
  it('matches event types with NATS wildcards', () => {
    const filter = { event_types: ['user.*', 'payment.>'], event_sources: null, event_categories: null };
    expect(matchesSubscription(filter, event('user.created'))).toBe(true);
    expect(matchesSubscription(filter, event('user.profile.updated'))).toBe(false);
    expect(matchesSubscription(filter, event('user'))).toBe(false);
    expect(matchesSubscription(filter, event('payment.card.declined'))).toBe(true);
    expect(matchesSubscription(filter, event('payment'))).toBe(false);
    expect(matchesSubscription(filter, event('order.created'))).toBe(false);
    expect(matchesSubscription({ ...filter, event_types: ['>'] }, event('anything.at.all'))).toBe(true);
    expect(matchesSubscription({ ...filter, event_types: ['page_view'] }, event('page_view'))).toBe(true);
  });

  it('requires every given filter to match; null or empty lists match anything', () => {
    const filter = {
      event_types: ['user.*'],
      event_sources: ['frontend'],
      event_categories: ['user_lifecycle', 'payment'],
    };
    expect(matchesSubscription(filter, event('user.created', 'frontend', 'payment'))).toBe(true);
    expect(matchesSubscription(filter, event('user.created', 'backend', 'payment'))).toBe(false);
    expect(matchesSubscription(filter, event('user.created', 'frontend', 'system'))).toBe(false);
    expect(matchesSubscription(filter, event('order.created', 'frontend', 'payment'))).toBe(false);
    expect(
      matchesSubscription(
        { event_types: ['user.*'], event_sources: [], event_categories: [] },
        event('user.x', 'iot', 'system'),
      ),
    ).toBe(true);
  });

  it('refuses malformed patterns', () => {
    for (const ok of ['user.created', 'user.*', 'user.>', '*', '>', '*.created', 'a.*.c.>']) {
      expect(patternProblem(ok), ok).toBeNull();
    }
    expect(patternProblem('user.>.x')).toMatch(/last/);
    expect(patternProblem('user*')).toMatch(/whole token/);
    expect(patternProblem('user.cre>')).toMatch(/whole token/);
    expect(patternProblem('user..created')).toMatch(/empty/);
    expect(patternProblem('.user')).toMatch(/empty/);
    expect(patternProblem('user.')).toMatch(/empty/);
    expect(patternProblem('user created')).toMatch(/spaces/);
  });
});
