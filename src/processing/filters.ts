/**
 * Which processors act on an event: filter validation and matching, and the run order. Pure.
 *
 * Filters: `event_type` (one pattern) and `event_types` (any of several), NATS-style (`*` one
 * token, `>` one or more trailing tokens), `event_source` and `event_category` (a value or a list
 * of values). Every filter given must match; no filter matches every event.
 */
import type { FieldProblem } from '../domain/errors.js';
import { EVENT_CATEGORIES, EVENT_SOURCES, type StoredEvent } from '../domain/event.js';
import { matchesPattern } from '../domain/subjects.js';

export interface ProcessorFilters {
  event_type?: string;
  event_types?: string[];
  event_source?: string | string[];
  event_category?: string | string[];
}

/** The fields of an event filters look at. */
export type FilterableEvent = Pick<StoredEvent, 'event_type' | 'event_source' | 'event_category'>;

/** The problem of an event-type pattern, or null: dot-separated non-empty tokens, `>` only last. */
export function patternProblem(pattern: string): string | null {
  if (pattern.length === 0) return 'must not be empty';
  if (/\s/.test(pattern)) return 'must not contain spaces';
  const tokens = pattern.split('.');
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token === '') return 'must not have empty tokens (`..`, or a leading or trailing `.`)';
    if (token === '>' && i !== tokens.length - 1) return '`>` may only be the last token';
    if (token !== '*' && token !== '>' && /[*>]/.test(token)) {
      return '`*` and `>` must be whole tokens (e.g. `user.*`, `order.>`)';
    }
  }
  return null;
}

const asList = (value: string | string[] | undefined): string[] | undefined =>
  value === undefined ? undefined : Array.isArray(value) ? value : [value];

/** Every problem of a filters object (shape checked by the route schema), paths under `prefix`. */
export function filterProblems(filters: ProcessorFilters, prefix = 'body.filters'): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (filters.event_type !== undefined) {
    const problem = patternProblem(filters.event_type);
    if (problem) problems.push({ path: `${prefix}.event_type`, message: problem });
  }
  filters.event_types?.forEach((pattern, index) => {
    const problem = patternProblem(pattern);
    if (problem) problems.push({ path: `${prefix}.event_types[${index}]`, message: problem });
  });
  const checkValues = (name: 'event_source' | 'event_category', allowed: readonly string[]) => {
    const value = filters[name];
    const list = asList(value);
    list?.forEach((item, index) => {
      if (!allowed.includes(item)) {
        problems.push({
          path: Array.isArray(value) ? `${prefix}.${name}[${index}]` : `${prefix}.${name}`,
          message: `must be one of: ${allowed.join(', ')}`,
        });
      }
    });
  };
  checkValues('event_source', EVENT_SOURCES);
  checkValues('event_category', EVENT_CATEGORIES);
  return problems;
}

/** True when every filter given matches the event. */
export function matchesFilters(filters: ProcessorFilters, event: FilterableEvent): boolean {
  if (filters.event_type !== undefined && !matchesPattern(filters.event_type, event.event_type)) return false;
  if (
    filters.event_types !== undefined &&
    !filters.event_types.some((pattern) => matchesPattern(pattern, event.event_type))
  ) {
    return false;
  }
  const sources = asList(filters.event_source);
  if (sources !== undefined && !sources.includes(event.event_source)) return false;
  const categories = asList(filters.event_category);
  if (categories !== undefined && !categories.includes(event.event_category)) return false;
  return true;
}

export interface Selectable {
  processor_id: string;
  processor_name: string;
  priority: number;
  enabled: boolean;
  filters: ProcessorFilters;
}

/** The enabled processors whose filters match, in run order: higher priority first, then by name. */
export function selectProcessors<P extends Selectable>(
  processors: readonly P[],
  event: FilterableEvent,
): P[] {
  return processors
    .filter((processor) => processor.enabled && matchesFilters(processor.filters, event))
    .sort(byRunOrder);
}

export function byRunOrder(a: Selectable, b: Selectable): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  return a.processor_name < b.processor_name ? -1 : a.processor_name > b.processor_name ? 1 : 0;
}
