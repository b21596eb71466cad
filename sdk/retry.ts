/**
 * Retry decisions of the client, pure: which failures are retried, how long to wait before the
 * next attempt, and what a `Retry-After` header asks for. The I/O lives in `request.ts`.
 */

/** How a call retries. Every field has a default. */
export interface RetryOptions {
  /** Attempts in all, the first included; 1 = never retry. Default 3. */
  maxAttempts?: number;
  /** Wait before the first retry, ms; doubles per retry. Default 200. */
  baseDelayMs?: number;
  /** Longest wait between two attempts, ms (a longer `Retry-After` is still honoured). Default 5000. */
  maxDelayMs?: number;
}

export type ResolvedRetryOptions = Required<RetryOptions>;

export const DEFAULT_RETRY: ResolvedRetryOptions = Object.freeze({
  maxAttempts: 3,
  baseDelayMs: 200,
  maxDelayMs: 5_000,
});

/** Statuses that mean "not done, try again later": rate limited, unavailable. Nothing else. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 503]);

/**
 * Error codes of transport failures where the request certainly never reached the service: the
 * connection was never made. Retrying these is safe for any request.
 */
export const NOT_SENT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Transport failures after which a retry may help (all of them, unless the caller aborted). */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  ...NOT_SENT_CODES,
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_REQ_RETRY',
  'TIMEOUT',
]);

export function resolveRetry(
  options: RetryOptions | false | undefined,
  base = DEFAULT_RETRY,
): ResolvedRetryOptions {
  if (options === false) return { ...base, maxAttempts: 1 };
  const resolved = { ...base, ...stripUndefined(options ?? {}) };
  if (!Number.isInteger(resolved.maxAttempts) || resolved.maxAttempts < 1) {
    throw new RangeError(`retry.maxAttempts must be an integer >= 1, not ${resolved.maxAttempts}`);
  }
  if (!(resolved.baseDelayMs >= 0) || !(resolved.maxDelayMs >= 0)) {
    throw new RangeError('retry.baseDelayMs and retry.maxDelayMs must be >= 0');
  }
  return resolved;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * The wait before retry number `retry` (1 for the first retry): exponential, capped, with
 * "equal jitter" (half of it fixed, half random), so that clients that failed together do not
 * come back together while each still waits at least half the nominal delay.
 */
export function backoffDelay(
  retry: number,
  options: ResolvedRetryOptions,
  random: () => number = Math.random,
): number {
  const nominal = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.round(nominal / 2 + random() * (nominal / 2));
}

/**
 * Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date), at least 0; undefined
 * when absent or unreadable.
 */
export function parseRetryAfter(
  value: string | string[] | undefined,
  now: number = Date.now(),
): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(text)) return Number(text);
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/** What to do after a failed attempt. */
export type RetryDecision = { type: 'retry'; afterMs: number } | { type: 'fail' };

/**
 * The decision after attempt number `attempt` failed. `failure` is an error status or a transport
 * failure (`sent` false when the request never reached the service). `idempotent` requests (GET,
 * PUT, DELETE, creates carrying an idempotency key) retry on any retryable failure; the others
 * only on a retryable status (429, 503: the service did not act) or when the request was not sent.
 * Never waits past `remainingMs` (the call's deadline): it fails instead.
 */
export function decideRetry(input: {
  attempt: number;
  failure:
    | { type: 'status'; status: number; retryAfterSeconds?: number | undefined }
    | { type: 'network'; code: string; sent: boolean };
  idempotent: boolean;
  options: ResolvedRetryOptions;
  remainingMs: number;
  random?: () => number;
}): RetryDecision {
  const { attempt, failure, idempotent, options, remainingMs } = input;
  if (attempt >= options.maxAttempts) return { type: 'fail' };
  let afterMs = backoffDelay(attempt, options, input.random);
  if (failure.type === 'status') {
    if (!RETRYABLE_STATUSES.has(failure.status)) return { type: 'fail' };
    if (failure.retryAfterSeconds !== undefined)
      afterMs = Math.max(afterMs, failure.retryAfterSeconds * 1000);
  } else {
    if (!RETRYABLE_CODES.has(failure.code)) return { type: 'fail' };
    if (!idempotent && failure.sent) return { type: 'fail' };
  }
  // Waiting only to find the deadline passed helps no one.
  if (afterMs >= remainingMs) return { type: 'fail' };
  return { type: 'retry', afterMs };
}
