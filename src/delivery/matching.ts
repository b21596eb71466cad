/**
 * Which events a subscription wants, pure. `event_types` are NATS-style patterns (`*` one token,
 * `>` the rest: `user.*` matches `user.created`, `user.>` also `user.profile.updated`); sources and
 * categories, when given, are lists of exact values. Every given filter must match.
 */
import { matchesPattern } from '../domain/subjects.js';

export interface SubscriptionFilter {
  event_types: readonly string[];
  /** null (or empty) = any source. */
  event_sources: readonly string[] | null;
  /** null (or empty) = any category. */
  event_categories: readonly string[] | null;
}

export interface MatchableEvent {
  event_type: string;
  event_source: string;
  event_category: string;
}

export function matchesSubscription(filter: SubscriptionFilter, event: MatchableEvent): boolean {
  if (filter.event_sources && filter.event_sources.length > 0) {
    if (!filter.event_sources.includes(event.event_source)) return false;
  }
  if (filter.event_categories && filter.event_categories.length > 0) {
    if (!filter.event_categories.includes(event.event_category)) return false;
  }
  return filter.event_types.some((pattern) => matchesPattern(pattern, event.event_type));
}

/** Why an event-type pattern is refused, or null: tokens non-empty, wildcards whole tokens, `>` last. */
export function patternProblem(pattern: string): string | null {
  if (pattern.trim() !== pattern || /\s/.test(pattern)) return 'must not contain spaces';
  const tokens = pattern.split('.');
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token === '') return 'must not have empty tokens (leading, trailing or double dots)';
    if (token === '>' && i !== tokens.length - 1) return '`>` must be the last token';
    if (token !== '*' && token !== '>' && /[*>]/.test(token)) {
      return 'a wildcard must be a whole token (e.g. `user.*`, `user.>`)';
    }
  }
  return null;
}
