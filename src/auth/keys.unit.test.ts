import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bearerToken, generateApiKey, hashKey, keyIdOf, looksLikeJwt } from './keys.js';

describe('API keys', () => {
  it('are esk_<key id>_<32 random bytes>, hashed with SHA-256', () => {
    const generated = generateApiKey();
    expect(generated.key).toMatch(/^esk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(keyIdOf(generated.key)).toBe(generated.keyId);
    expect(generated.hash).toBe(createHash('sha256').update(generated.key).digest('hex'));
    expect(hashKey(generated.key)).toBe(generated.hash);
    expect(generateApiKey().key).not.toBe(generated.key);
  });
  it('are told apart from JWTs and from other strings', () => {
    expect(looksLikeJwt(generateApiKey().key)).toBe(false);
    expect(looksLikeJwt('aaa.bbb.ccc')).toBe(true);
    expect(keyIdOf('not-a-key')).toBeNull();
    expect(keyIdOf('esk_0123456789ab_short')).toBeNull();
  });
  it('arrive as Authorization: Bearer', () => {
    expect(bearerToken(undefined)).toEqual({ type: 'missing' });
    expect(bearerToken('')).toEqual({ type: 'missing' });
    expect(bearerToken('Basic dXNlcjpwdw==')).toEqual({ type: 'missing' });
    expect(bearerToken('Bearer')).toEqual({ type: 'malformed' });
    expect(bearerToken('Bearer a b')).toEqual({ type: 'malformed' });
    expect(bearerToken(`Bearer ${'x'.repeat(9000)}`)).toEqual({ type: 'malformed' });
    expect(bearerToken('bearer  abc ')).toEqual({ type: 'token', token: 'abc' });
    expect(bearerToken(['Bearer first', 'Bearer second'])).toEqual({ type: 'token', token: 'first' });
  });
});
