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
