/**
 * NATS subject helpers, pure: sanitizing tokens built from user input, and NATS-style pattern
 * matching (`*` one token, `>` the rest) used for stream filters and event-type filters.
 */

/** A subject token from user input: no spaces, `.`, `*`, `>` or control characters; never empty. */
export function subjectToken(value: string): string {
  // eslint-disable-next-line no-control-regex
  const cleaned = value.replace(/[\s.*>\u0000-\u001f\u007f]+/g, '_').slice(0, 128);
  return cleaned === '' ? '_' : cleaned;
}

/** True when `subject` (dot-separated tokens) matches `pattern` with NATS wildcards. */
export function matchesPattern(pattern: string, subject: string): boolean {
  if (pattern === subject) return true;
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const token = p[i]!;
    if (token === '>') return i < s.length;
    if (i >= s.length) return false;
    if (token !== '*' && token !== s[i]) return false;
  }
  return p.length === s.length;
}

/**
 * True when every subject that `specific` matches is also matched by `general` (both may hold
 * wildcards): `events.>` covers `events.backend.>`, `events.*.x` does not.
 */
export function patternCovers(general: string, specific: string): boolean {
  const g = general.split('.');
  const s = specific.split('.');
  for (let i = 0; i < g.length; i++) {
    const token = g[i]!;
    if (token === '>') return i < s.length;
    if (i >= s.length) return false;
    const other = s[i]!;
    if (other === '>') return false;
    if (token !== '*' && token !== other) return false;
  }
  return g.length === s.length;
}
