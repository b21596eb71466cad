/**
 * What an attempt's result means, and when to try again: pure.
 *
 * 2xx is delivered. Timeouts, network errors, 408, 429 and 5xx are retried (429 and 503 no sooner
 * than their `Retry-After`); every other status (3xx: redirects are not followed, other 4xx) and a
 * target refused by the SSRF guard fail for good. The schedule is the subscription's
 * `retry_policy` when it has one (exact seconds, the last value repeated), else the Standard
 * Webhooks / Svix one: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, each ±20 % at random.
 */

/** Seconds to wait before retry 1, 2, 3 … of the default schedule; the last repeats. */
export const DEFAULT_BACKOFF_SECONDS = [5, 300, 1800, 7200, 18_000, 36_000, 36_000] as const;
/** Retries after the first attempt by default: 8 attempts over about 28 hours. */
export const DEFAULT_MAX_RETRIES = DEFAULT_BACKOFF_SECONDS.length;
/** Spread of the default schedule: each delay is multiplied by a factor in [0.8, 1.2]. */
export const JITTER = 0.2;
/** A `Retry-After` longer than this is capped to it. */
export const MAX_RETRY_AFTER_MS = 24 * 3_600_000;

export interface RetryPolicy {
  /** Retries after the first attempt; default: as many as `backoff_seconds` has, else 7. */
  max_retries?: number;
  /** Seconds before retry 1, 2, 3 …; the last value repeats. Default: the Standard Webhooks schedule. */
  backoff_seconds?: number[];
}

/** What one attempt produced, as the sender saw it. */
export type AttemptResult =
  | { type: 'response'; status: number; retryAfter?: string | null }
  | { type: 'timeout'; afterMs: number }
  | { type: 'network'; message: string }
  /** The SSRF guard refused the connection (the host now resolves to a forbidden address). */
  | { type: 'refused'; message: string };

export type Outcome =
  | { type: 'delivered' }
  | { type: 'retry'; afterMs: number; reason: string }
  | { type: 'dead'; reason: string };

/** Status codes that are worth retrying besides 5xx. */
const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 429]);

export function maxRetries(policy: RetryPolicy): number {
  if (policy.max_retries !== undefined) return policy.max_retries;
  if (policy.backoff_seconds && policy.backoff_seconds.length > 0) return policy.backoff_seconds.length;
  return DEFAULT_MAX_RETRIES;
}

/** Milliseconds before retry `retry` (1 = the first retry). `random` returns [0, 1). */
export function retryDelayMs(policy: RetryPolicy, retry: number, random: () => number): number {
  const custom = policy.backoff_seconds && policy.backoff_seconds.length > 0 ? policy.backoff_seconds : null;
  const list: readonly number[] = custom ?? DEFAULT_BACKOFF_SECONDS;
  const seconds = list[Math.min(Math.max(retry, 1), list.length) - 1]!;
  const base = seconds * 1000;
  if (custom) return Math.round(base);
  return Math.round(base * (1 + JITTER * (2 * random() - 1)));
}

/** `Retry-After` as milliseconds from now: delta-seconds or an HTTP date; null when absent or invalid. */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | null {
  if (value === null || value === undefined) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, MAX_RETRY_AFTER_MS);
  // An HTTP date names its day and month (`Wed, 21 Oct 2015 07:28:00 GMT`).
  if (!/[a-z]/i.test(text)) return null;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return null;
  return Math.min(Math.max(0, date - nowMs), MAX_RETRY_AFTER_MS);
}

type Verdict =
  | { type: 'delivered' }
  | { type: 'retryable'; reason: string; notBeforeMs: number }
  | { type: 'final'; reason: string };

function classify(result: AttemptResult, nowMs: number): Verdict {
  switch (result.type) {
    case 'response': {
      const { status } = result;
      if (status >= 200 && status < 300) return { type: 'delivered' };
      if (status >= 500 || RETRYABLE_STATUSES.has(status)) {
        const retryAfter =
          status === 429 || status === 503 ? parseRetryAfter(result.retryAfter, nowMs) : null;
        return {
          type: 'retryable',
          reason: `HTTP ${status}${retryAfter !== null ? ` (Retry-After ${Math.ceil(retryAfter / 1000)} s)` : ''}`,
          notBeforeMs: retryAfter ?? 0,
        };
      }
      return {
        type: 'final',
        reason:
          status >= 300 && status < 400
            ? `HTTP ${status}: redirects are not followed`
            : `HTTP ${status}: not retried (client error)`,
      };
    }
    case 'timeout':
      return { type: 'retryable', reason: `no response within ${result.afterMs} ms`, notBeforeMs: 0 };
    case 'network':
      return { type: 'retryable', reason: result.message, notBeforeMs: 0 };
    case 'refused':
      return { type: 'final', reason: result.message };
  }
}

export interface DecideContext {
  /** Attempts made in this round, this one included (1 on the first attempt). */
  roundAttempts: number;
  policy: RetryPolicy;
  random: () => number;
  nowMs: number;
}

/** The outcome of one attempt: delivered, retry after some time, or dead (with why). */
export function decideOutcome(result: AttemptResult, context: DecideContext): Outcome {
  const verdict = classify(result, context.nowMs);
  if (verdict.type === 'delivered') return verdict;
  if (verdict.type === 'final') return { type: 'dead', reason: verdict.reason };
  const retriesDone = context.roundAttempts - 1;
  const allowed = maxRetries(context.policy);
  if (retriesDone >= allowed) {
    return {
      type: 'dead',
      reason: `${verdict.reason}; gave up after ${context.roundAttempts} attempt${context.roundAttempts === 1 ? '' : 's'}`,
    };
  }
  const scheduled = retryDelayMs(context.policy, retriesDone + 1, context.random);
  return { type: 'retry', afterMs: Math.max(scheduled, verdict.notBeforeMs), reason: verdict.reason };
}
