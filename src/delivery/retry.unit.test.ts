import { describe, expect, it } from 'vitest';
import {
  decideOutcome,
  DEFAULT_BACKOFF_SECONDS,
  DEFAULT_MAX_RETRIES,
  maxRetries,
  parseRetryAfter,
  retryDelayMs,
  type AttemptResult,
  type RetryPolicy,
} from './retry.js';

const NOW = Date.parse('2025-06-01T12:00:00Z');
const fixed = (value: number) => () => value;
const decide = (result: AttemptResult, roundAttempts = 1, policy: RetryPolicy = {}, random = fixed(0.5)) =>
  decideOutcome(result, { roundAttempts, policy, random, nowMs: NOW });
const response = (status: number, retryAfter?: string): AttemptResult => ({
  type: 'response',
  status,
  retryAfter,
});

describe('retry schedule', () => {
  it('follows Standard Webhooks / Svix by default: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h', () => {
    expect(DEFAULT_BACKOFF_SECONDS).toEqual([5, 300, 1800, 7200, 18000, 36000, 36000]);
    expect(DEFAULT_MAX_RETRIES).toBe(7);
    const exact = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => retryDelayMs({}, n, fixed(0.5)));
    expect(exact).toEqual([
      5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000, 36_000_000,
    ]);
  });

  it('spreads the default schedule by ±20 %', () => {
    expect(retryDelayMs({}, 1, fixed(0))).toBe(4_000);
    expect(retryDelayMs({}, 1, fixed(0.999999))).toBeCloseTo(6_000, -1);
    expect(retryDelayMs({}, 2, fixed(0.25))).toBe(270_000);
    for (let i = 0; i < 200; i++) {
      const delay = retryDelayMs({}, 3, Math.random);
      expect(delay).toBeGreaterThanOrEqual(1_440_000);
      expect(delay).toBeLessThanOrEqual(2_160_000);
    }
  });

  it('uses a retry policy exactly, the last value repeated', () => {
    const policy = { max_retries: 5, backoff_seconds: [1, 5, 30] };
    expect([1, 2, 3, 4, 5].map((n) => retryDelayMs(policy, n, fixed(0)))).toEqual([
      1000, 5000, 30_000, 30_000, 30_000,
    ]);
    expect(retryDelayMs({ backoff_seconds: [0.05] }, 1, fixed(0))).toBe(50);
  });

  it('allows as many retries as the policy says, else as its backoff list has, else 7', () => {
    expect(maxRetries({})).toBe(7);
    expect(maxRetries({ backoff_seconds: [1, 5, 30] })).toBe(3);
    expect(maxRetries({ max_retries: 0, backoff_seconds: [1, 5, 30] })).toBe(0);
    expect(maxRetries({ max_retries: 10 })).toBe(10);
  });
});

describe('attempt outcomes', () => {
  it('2xx is delivered', () => {
    for (const status of [200, 201, 202, 204, 299])
      expect(decide(response(status))).toEqual({ type: 'delivered' });
  });

  it('5xx, 408, 429, timeouts and network errors are retried on schedule', () => {
    for (const result of [
      response(500),
      response(502),
      response(503),
      response(408),
      response(429),
      { type: 'timeout', afterMs: 1000 } as const,
      { type: 'network', message: 'ECONNREFUSED' } as const,
    ]) {
      const outcome = decide(result, 1);
      expect(outcome.type, JSON.stringify(result)).toBe('retry');
      expect(outcome.type === 'retry' && outcome.afterMs).toBe(5000);
    }
    expect(decide({ type: 'timeout', afterMs: 1000 })).toMatchObject({
      reason: 'no response within 1000 ms',
    });
    expect(decide(response(503), 3)).toMatchObject({ type: 'retry', afterMs: 1_800_000, reason: 'HTTP 503' });
  });

  it('other 4xx, redirects and SSRF refusals fail for good', () => {
    for (const status of [400, 401, 403, 404, 410, 413, 422]) {
      expect(decide(response(status))).toEqual({
        type: 'dead',
        reason: `HTTP ${status}: not retried (client error)`,
      });
    }
    expect(decide(response(301))).toMatchObject({ type: 'dead', reason: expect.stringMatching(/redirect/) });
    expect(decide({ type: 'refused', message: 'resolves to 10.0.0.1' })).toEqual({
      type: 'dead',
      reason: 'resolves to 10.0.0.1',
    });
  });

  it('gives up after max_retries retries', () => {
    const policy = { max_retries: 2, backoff_seconds: [1] };
    expect(decide(response(500), 1, policy)).toMatchObject({ type: 'retry', afterMs: 1000 });
    expect(decide(response(500), 2, policy)).toMatchObject({ type: 'retry', afterMs: 1000 });
    expect(decide(response(500), 3, policy)).toEqual({
      type: 'dead',
      reason: 'HTTP 500; gave up after 3 attempts',
    });
    expect(decide(response(500), 1, { max_retries: 0 })).toMatchObject({ type: 'dead' });
    expect(decide(response(500), 8)).toMatchObject({ type: 'dead' });
    expect(decide(response(500), 7)).toMatchObject({ type: 'retry' });
  });

  it('waits at least Retry-After on 429 and 503, in seconds or as a date', () => {
    const policy = { backoff_seconds: [1] };
    expect(decide(response(429, '30'), 1, policy)).toMatchObject({
      type: 'retry',
      afterMs: 30_000,
      reason: 'HTTP 429 (Retry-After 30 s)',
    });
    expect(decide(response(503, new Date(NOW + 90_000).toUTCString()), 1, policy)).toMatchObject({
      afterMs: 90_000,
    });
    // The schedule wins when it is longer; nonsense is ignored; 500 does not read it.
    expect(decide(response(429, '1'), 1, { backoff_seconds: [10] })).toMatchObject({ afterMs: 10_000 });
    expect(decide(response(429, 'soon'), 1, policy)).toMatchObject({ afterMs: 1000, reason: 'HTTP 429' });
    expect(decide(response(500, '60'), 1, policy)).toMatchObject({ afterMs: 1000 });
  });

  it('parses Retry-After, capped at a day', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', NOW)).toBe(0);
    expect(parseRetryAfter(new Date(NOW - 5000).toUTCString(), NOW)).toBe(0);
    expect(parseRetryAfter('999999999', NOW)).toBe(24 * 3_600_000);
    expect(parseRetryAfter(null, NOW)).toBeNull();
    expect(parseRetryAfter('-5', NOW)).toBeNull();
  });
});
