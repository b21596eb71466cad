/**
 * Retry schedule and the outcome of one processing attempt of an event. Pure: the engine passes
 * in what happened and gets back what to write.
 */

export interface RetryPolicy {
  /** Retries after the first failed attempt; then the event is a dead letter. */
  maxRetries: number;
  /** Delay before the first retry, ms; doubles with every retry. */
  baseMs: number;
  /** Longest delay, ms. */
  maxMs: number;
}

/**
 * Delay before retry number `retry` (1 = the first): exponential (base · 2^(retry-1), capped),
 * with "equal jitter": half of it fixed, half random, so instances that failed together do not
 * come back together. `random` is in [0, 1).
 */
export function backoffMs(
  retry: number,
  policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>,
  random: number,
): number {
  const exponent = Math.min(Math.max(retry - 1, 0), 40);
  const full = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return Math.round(full / 2 + (full / 2) * random);
}

/** What one processor did with the event on this attempt. */
export type RunOutcome =
  | { type: 'success'; message?: string }
  /** A failure that may pass (timeout, 5xx, connection refused): retried with backoff. */
  | { type: 'retry'; message: string }
  /** A failure retrying cannot fix (a 4xx, a bad config): the event becomes a dead letter now. */
  | { type: 'failed'; message: string }
  /** Not run: it already succeeded on an earlier attempt. */
  | { type: 'skipped'; message: string }
  /** Not run: the batch ran out of time; the event goes back to the queue without counting a failure. */
  | { type: 'deferred' };

/** What becomes of the event after an attempt. */
export type EventDecision =
  | { type: 'processed' }
  | { type: 'retry'; retryCount: number; afterMs: number; error: string }
  | { type: 'dead'; retryCount: number; error: string }
  /** Back to pending as it was (nothing failed, something did not run). */
  | { type: 'release' };

export interface NamedOutcome {
  processorName: string;
  outcome: RunOutcome;
}

/** The first failure messages, named, joined: the event's `error_message`. */
export function errorMessage(outcomes: readonly NamedOutcome[]): string {
  return outcomes
    .filter(({ outcome }) => outcome.type === 'retry' || outcome.type === 'failed')
    .map(({ processorName, outcome }) => `${processorName}: ${(outcome as { message: string }).message}`)
    .join('; ')
    .slice(0, 4000);
}

/**
 * Decides the event's fate from this attempt's outcomes. `retryCount` is the number of retries
 * already made. A permanent failure, or a retryable one once the retries are used up, makes the
 * event a dead letter; a retryable one before that schedules a retry; otherwise it is processed,
 * unless something was deferred.
 */
export function decideEvent(
  outcomes: readonly NamedOutcome[],
  retryCount: number,
  policy: RetryPolicy,
  random: number,
): EventDecision {
  const permanent = outcomes.some(({ outcome }) => outcome.type === 'failed');
  const retryable = outcomes.some(({ outcome }) => outcome.type === 'retry');
  if (permanent || (retryable && retryCount >= policy.maxRetries)) {
    return { type: 'dead', retryCount, error: errorMessage(outcomes) };
  }
  if (retryable) {
    const next = retryCount + 1;
    return {
      type: 'retry',
      retryCount: next,
      afterMs: backoffMs(next, policy, random),
      error: errorMessage(outcomes),
    };
  }
  if (outcomes.some(({ outcome }) => outcome.type === 'deferred')) return { type: 'release' };
  return { type: 'processed' };
}

/** The status a processing result row records for an outcome, given the event's fate. */
export function resultStatus(
  outcome: RunOutcome,
  decision: EventDecision,
): 'success' | 'failed' | 'skipped' | 'retry' | null {
  switch (outcome.type) {
    case 'success':
      return 'success';
    case 'skipped':
      return 'skipped';
    case 'deferred':
      return null;
    case 'failed':
      return 'failed';
    case 'retry':
      return decision.type === 'dead' ? 'failed' : 'retry';
  }
}
