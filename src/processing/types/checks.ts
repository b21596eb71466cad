/**
 * Config checks shared by the built-in processor types, and the placeholders their names may
 * carry (`{event_type}`, `{event_source}`, `{event_category}`). Pure.
 */
import type { FieldProblem } from '../../domain/errors.js';
import type { StoredEvent } from '../../domain/event.js';
import { subjectToken } from '../../domain/subjects.js';

/** Collects problems of one config; paths are relative to the config (`url`, `headers.x`). */
export class ConfigChecker {
  readonly problems: FieldProblem[] = [];
  constructor(
    readonly config: Record<string, unknown>,
    allowed: readonly string[],
  ) {
    for (const key of Object.keys(config)) {
      if (!allowed.includes(key)) {
        this.problems.push({ path: key, message: `is not a known field (known: ${allowed.join(', ')})` });
      }
    }
  }

  problem(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  string(
    name: string,
    options: { required: boolean; minLength?: number; maxLength: number },
  ): string | undefined {
    const value = this.config[name];
    if (value === undefined) {
      if (options.required) this.problem(name, 'is required');
      return undefined;
    }
    if (typeof value !== 'string') {
      this.problem(name, 'must be a string');
      return undefined;
    }
    if (value.length < (options.minLength ?? 1)) {
      this.problem(
        name,
        (options.minLength ?? 1) === 1
          ? 'must not be empty'
          : `must be at least ${options.minLength} characters`,
      );
      return undefined;
    }
    if (value.length > options.maxLength) {
      this.problem(name, `must be at most ${options.maxLength} characters`);
      return undefined;
    }
    return value;
  }

  integer(name: string, min: number, max: number): number | undefined {
    const value = this.config[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.problem(name, `must be a whole number from ${min} to ${max}`);
      return undefined;
    }
    return value;
  }

  boolean(name: string): boolean | undefined {
    const value = this.config[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'boolean') {
      this.problem(name, 'must be true or false');
      return undefined;
    }
    return value;
  }

  /** A URL with one of `schemes` (e.g. `redis:`); returns it parsed. */
  url(name: string, schemes: readonly string[]): URL | undefined {
    const value = this.string(name, { required: true, maxLength: 2048 });
    if (value === undefined) return undefined;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      this.problem(name, 'must be an absolute URL');
      return undefined;
    }
    if (!schemes.includes(url.protocol)) {
      this.problem(name, `must use ${schemes.map((s) => s.replace(/:$/, '')).join(' or ')}`);
      return undefined;
    }
    if (url.hostname === '') {
      this.problem(name, 'must name a host');
      return undefined;
    }
    return url;
  }
}

export const PLACEHOLDERS = ['{event_type}', '{event_source}', '{event_category}'] as const;

/** A template's problem with its placeholders: `{...}` other than the known ones. */
export function placeholderProblem(template: string): string | null {
  const unknown = template.match(/\{[^}]*\}/g)?.find((p) => !(PLACEHOLDERS as readonly string[]).includes(p));
  return unknown ? `unknown placeholder ${unknown} (known: ${PLACEHOLDERS.join(', ')})` : null;
}

type Placed = Pick<StoredEvent, 'event_type' | 'event_source' | 'event_category'>;

/** Replaces the placeholders with the event's values, as they are. */
export function expandTemplate(template: string, event: Placed): string {
  if (!template.includes('{')) return template;
  return template
    .replaceAll('{event_type}', event.event_type)
    .replaceAll('{event_source}', event.event_source)
    .replaceAll('{event_category}', event.event_category);
}

/**
 * Replaces the placeholders for a NATS subject: the event type keeps its dots as subject tokens
 * (`user.created` stays two tokens), each token sanitized (no spaces, `*`, `>`, empty tokens).
 */
export function expandSubject(template: string, event: Placed): string {
  if (!template.includes('{')) return template;
  const typeTokens = event.event_type.split('.').map(subjectToken).join('.');
  return template
    .replaceAll('{event_type}', typeTokens)
    .replaceAll('{event_source}', subjectToken(event.event_source))
    .replaceAll('{event_category}', subjectToken(event.event_category));
}

/** A subject to publish to (placeholders expanded with sample values): no wildcards, no empty tokens. */
export function subjectProblem(subject: string): string | null {
  const placeholder = placeholderProblem(subject);
  if (placeholder) return placeholder;
  const sample = expandSubject(subject, {
    event_type: 'x',
    event_source: 'backend',
    event_category: 'system',
  });
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(sample)) return 'must not contain spaces or control characters';
  const tokens = sample.split('.');
  if (tokens.some((token) => token === ''))
    return 'must not have empty tokens (`..`, or a leading or trailing `.`)';
  if (tokens.some((token) => token.includes('*') || token.includes('>'))) {
    return 'must not contain wildcards (`*`, `>`): a message is published to one subject';
  }
  return null;
}
