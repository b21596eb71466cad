import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY, backoffDelay, decideRetry, parseRetryAfter, resolveRetry } from './retry.js';

describe('backoffDelay', () => {
  const options = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1_000 };

  it('doubles per retry, half fixed and half random, capped', () => {
    expect(backoffDelay(1, options, () => 0)).toBe(50);
    expect(backoffDelay(1, options, () => 1)).toBe(100);
    expect(backoffDelay(2, options, () => 0)).toBe(100);
    expect(backoffDelay(3, options, () => 0.5)).toBe(300);
    expect(backoffDelay(10, options, () => 1)).toBe(1_000);
    expect(backoffDelay(10, options, () => 0)).toBe(500);
  });

  it('stays within [nominal/2, nominal] with real randomness', () => {
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelay(2, options);
      expect(delay).toBeGreaterThanOrEqual(100);
      expect(delay).toBeLessThanOrEqual(200);
    }
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');

  it('reads delta-seconds and HTTP dates', () => {
    expect(parseRetryAfter('3', now)).toBe(3);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter(['2', '9'], now)).toBe(2);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:05 GMT', now)).toBe(5);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
  });

  it('is undefined when absent or unreadable', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });
});

describe('resolveRetry', () => {
  it('applies defaults, false means one attempt, and refuses nonsense', () => {
    expect(resolveRetry(undefined)).toEqual(DEFAULT_RETRY);
    expect(resolveRetry({ maxAttempts: 5, baseDelayMs: undefined })).toEqual({
      ...DEFAULT_RETRY,
      maxAttempts: 5,
    });
    expect(resolveRetry(false).maxAttempts).toBe(1);
    expect(() => resolveRetry({ maxAttempts: 0 })).toThrow(RangeError);
    expect(() => resolveRetry({ baseDelayMs: -1 })).toThrow(RangeError);
  });
});

describe('decideRetry', () => {
  const options = { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1_000 };
  const base = { attempt: 1, idempotent: true, options, remainingMs: 10_000, random: () => 0 };

  it('retries 429 and 503, and no other status', () => {
    expect(decideRetry({ ...base, failure: { type: 'status', status: 503 } })).toEqual({
      type: 'retry',
      afterMs: 50,
    });
    expect(decideRetry({ ...base, failure: { type: 'status', status: 429 } }).type).toBe('retry');
    for (const status of [400, 401, 403, 404, 409, 413, 422, 500, 502, 504]) {
      expect(decideRetry({ ...base, failure: { type: 'status', status } })).toEqual({ type: 'fail' });
    }
  });

  it('retries 429 and 503 even for requests that are not idempotent: the service did not act', () => {
    expect(decideRetry({ ...base, idempotent: false, failure: { type: 'status', status: 503 } }).type).toBe(
      'retry',
    );
  });

  it('honours Retry-After when it is longer than the backoff', () => {
    expect(decideRetry({ ...base, failure: { type: 'status', status: 429, retryAfterSeconds: 2 } })).toEqual({
      type: 'retry',
      afterMs: 2_000,
    });
  });

  it('fails rather than wait past the deadline', () => {
    expect(
      decideRetry({
        ...base,
        remainingMs: 1_500,
        failure: { type: 'status', status: 429, retryAfterSeconds: 2 },
      }),
    ).toEqual({ type: 'fail' });
  });

  it('stops after maxAttempts', () => {
    expect(decideRetry({ ...base, attempt: 2, failure: { type: 'status', status: 503 } }).type).toBe('retry');
    expect(decideRetry({ ...base, attempt: 3, failure: { type: 'status', status: 503 } })).toEqual({
      type: 'fail',
    });
  });

  it('retries network failures of idempotent requests, and of others only when nothing was sent', () => {
    const reset = { type: 'network', code: 'ECONNRESET', sent: true } as const;
    const refused = { type: 'network', code: 'ECONNREFUSED', sent: false } as const;
    expect(decideRetry({ ...base, failure: reset }).type).toBe('retry');
    expect(decideRetry({ ...base, failure: { type: 'network', code: 'TIMEOUT', sent: true } }).type).toBe(
      'retry',
    );
    expect(decideRetry({ ...base, idempotent: false, failure: reset })).toEqual({ type: 'fail' });
    expect(decideRetry({ ...base, idempotent: false, failure: refused }).type).toBe('retry');
  });

  it('does not retry unknown transport failures', () => {
    expect(decideRetry({ ...base, failure: { type: 'network', code: 'UNKNOWN', sent: true } })).toEqual({
      type: 'fail',
    });
  });
});
