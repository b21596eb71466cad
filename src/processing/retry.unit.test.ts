import { describe, expect, it } from 'vitest';
import { backoffMs, decideEvent, resultStatus, type NamedOutcome } from './retry.js';

const policy = { maxRetries: 3, baseMs: 1000, maxMs: 10_000 };

describe('backoffMs', () => {
  it('doubles per retry, between half and all of the step (equal jitter)', () => {
    expect([1, 2, 3, 4].map((n) => backoffMs(n, policy, 0))).toEqual([500, 1000, 2000, 4000]);
    expect([1, 2, 3, 4].map((n) => backoffMs(n, policy, 0.999999))).toEqual([1000, 2000, 4000, 8000]);
  });
  it('is capped', () => {
    expect(backoffMs(10, policy, 0.999999)).toBe(10_000);
    expect(backoffMs(1000, policy, 0)).toBe(5000);
  });
  it('spreads retries that failed together', () => {
    const delays = new Set(Array.from({ length: 50 }, (_, i) => backoffMs(3, policy, i / 50)));
    expect(delays.size).toBeGreaterThan(40);
  });
});

const ok: NamedOutcome = { processorName: 'a', outcome: { type: 'success' } };
const flaky: NamedOutcome = { processorName: 'b', outcome: { type: 'retry', message: 'HTTP 503' } };
const broken: NamedOutcome = { processorName: 'c', outcome: { type: 'failed', message: 'HTTP 404' } };
const deferred: NamedOutcome = { processorName: 'd', outcome: { type: 'deferred' } };
const skipped: NamedOutcome = { processorName: 'e', outcome: { type: 'skipped', message: 'done before' } };

describe('decideEvent', () => {
  it('no processor, or all succeeded or skipped: processed', () => {
    expect(decideEvent([], 0, policy, 0.5)).toEqual({ type: 'processed' });
    expect(decideEvent([ok, skipped], 2, policy, 0.5)).toEqual({ type: 'processed' });
  });
  it('a retryable failure with retries left: retry with the next count and a backoff', () => {
    expect(decideEvent([ok, flaky], 0, policy, 0)).toEqual({
      type: 'retry',
      retryCount: 1,
      afterMs: 500,
      error: 'b: HTTP 503',
    });
    expect(decideEvent([flaky], 2, policy, 0)).toMatchObject({ type: 'retry', retryCount: 3, afterMs: 2000 });
  });
  it('retries used up: dead letter', () => {
    expect(decideEvent([flaky], 3, policy, 0)).toEqual({ type: 'dead', retryCount: 3, error: 'b: HTTP 503' });
  });
  it('a permanent failure: dead letter at once, naming every failure', () => {
    expect(decideEvent([flaky, broken], 0, policy, 0)).toEqual({
      type: 'dead',
      retryCount: 0,
      error: 'b: HTTP 503; c: HTTP 404',
    });
  });
  it('maxRetries 0: the first failure is final', () => {
    expect(decideEvent([flaky], 0, { ...policy, maxRetries: 0 }, 0)).toMatchObject({ type: 'dead' });
  });
  it('deferred without failure: released; with a failure: the failure decides', () => {
    expect(decideEvent([ok, deferred], 1, policy, 0)).toEqual({ type: 'release' });
    expect(decideEvent([flaky, deferred], 0, policy, 0)).toMatchObject({ type: 'retry' });
  });
});

describe('resultStatus', () => {
  it('records retry while retrying and failed once dead; nothing for deferred', () => {
    const retry = decideEvent([flaky], 0, policy, 0);
    const dead = decideEvent([flaky], 3, policy, 0);
    expect(resultStatus(flaky.outcome, retry)).toBe('retry');
    expect(resultStatus(flaky.outcome, dead)).toBe('failed');
    expect(resultStatus(broken.outcome, dead)).toBe('failed');
    expect(resultStatus(ok.outcome, retry)).toBe('success');
    expect(resultStatus(skipped.outcome, retry)).toBe('skipped');
    expect(resultStatus(deferred.outcome, retry)).toBeNull();
  });
});
