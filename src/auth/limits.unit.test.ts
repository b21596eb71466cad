import { describe, expect, it } from 'vitest';
import { ForbiddenError } from '../domain/errors.js';
import { canSee, foreignWrite, readFilterUser, writeAsUser } from './ownership.js';
import { RateLimiter } from './rate-limit.js';
import { TtlCache } from './ttl-cache.js';

describe('TtlCache', () => {
  it('expires entries and evicts the least recently used past its size', () => {
    let now = 0;
    const cache = new TtlCache<string, number>(2, () => now);
    cache.set('a', 1, 100);
    cache.set('b', 2, 100);
    expect(cache.get('a')).toBe(1); // a is now the most recently used
    cache.set('c', 3, 100);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(1);
    now = 100;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(1);
    cache.set('d', 4, 0);
    expect(cache.get('d')).toBeUndefined();
  });
});

describe('RateLimiter', () => {
  it('allows perMinute requests a window per key, then says when to retry', () => {
    let now = 1_000;
    const limiter = new RateLimiter(2, 100, () => now);
    expect(limiter.hit('k')).toEqual({ allowed: true });
    expect(limiter.hit('k')).toEqual({ allowed: true });
    now += 20_000;
    expect(limiter.hit('k')).toEqual({ allowed: false, retryAfterSeconds: 40 });
    expect(limiter.hit('other')).toEqual({ allowed: true });
    now += 40_000;
    expect(limiter.hit('k')).toEqual({ allowed: true });
  });
  it('is off at 0 and bounded in the keys it tracks', () => {
    expect(new RateLimiter(0).hit('k')).toEqual({ allowed: true });
    const limiter = new RateLimiter(1, 3, () => 0);
    for (const key of ['a', 'b', 'c', 'd']) limiter.hit(key);
    // 'a' was dropped: it starts a new window.
    expect(limiter.hit('a')).toEqual({ allowed: true });
    expect(limiter.hit('d')).toEqual({ allowed: false, retryAfterSeconds: 60 });
  });
});

describe('ownership', () => {
  it('writes as the bound user: sets a missing user_id, refuses another', () => {
    expect(writeAsUser(null, { user_id: 'x' }, 'body')).toEqual({ user_id: 'x' });
    const input: { event_type: string; user_id?: string | null } = { event_type: 'e' };
    expect(writeAsUser('u', input, 'body')).toEqual({ event_type: 'e', user_id: 'u' });
    expect(writeAsUser('u', { user_id: null }, 'body')).toEqual({ user_id: 'u' });
    expect(() => writeAsUser('u', { user_id: 'v' }, 'body[2]')).toThrow(ForbiddenError);
    expect(foreignWrite('u', { user_id: 'v' }, 'body[2]')?.message).toMatch(/^body\[2\]\.user_id/);
    expect(foreignWrite('u', { user_id: 'u' }, 'body')).toBeNull();
  });
  it('reads as the bound user', () => {
    expect(readFilterUser(null, undefined, 'q')).toBeUndefined();
    expect(readFilterUser(null, 'v', 'q')).toBe('v');
    expect(readFilterUser('u', undefined, 'q')).toBe('u');
    expect(readFilterUser('u', 'u', 'q')).toBe('u');
    expect(() => readFilterUser('u', 'v', 'q')).toThrow(ForbiddenError);
    expect(canSee(null, 'v')).toBe(true);
    expect(canSee('u', 'u')).toBe(true);
    expect(canSee('u', 'v')).toBe(false);
    expect(canSee('u', null)).toBe(false);
  });
});
