import { describe, expect, it } from 'vitest';
import {
  basicCredentials,
  bodyWriteKey,
  headerWriteKey,
  isOneOf,
  safeEqual,
  webhookAuthorized,
  webhookSecretCandidates,
} from './auth.js';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('safeEqual / isOneOf', () => {
  it('compares whole values of any length', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abcd')).toBe(false);
    expect(safeEqual('', 'a')).toBe(false);
    expect(isOneOf('k2', ['k1', 'k2', 'k3'])).toBe(true);
    expect(isOneOf('k4', ['k1', 'k2', 'k3'])).toBe(false);
    expect(isOneOf('k1', [])).toBe(false);
  });
});

describe('Basic credentials', () => {
  it('splits at the first colon', () => {
    expect(basicCredentials({ authorization: basic('key', '') })).toEqual({ username: 'key', password: '' });
    expect(basicCredentials({ authorization: basic('u', 'p:q') })).toEqual({
      username: 'u',
      password: 'p:q',
    });
    expect(basicCredentials({ authorization: `basic ${Buffer.from('only').toString('base64')}` })).toEqual({
      username: 'only',
      password: '',
    });
    expect(basicCredentials({ authorization: 'Bearer x' })).toBeNull();
    expect(basicCredentials({})).toBeNull();
  });
});

describe('webhook secret', () => {
  const secret = 's3cret';
  it('lets everything through when no secret is configured', () => {
    expect(webhookAuthorized({}, undefined)).toBe(true);
  });
  it.each([
    ['X-Signature', { 'x-signature': secret }],
    ['Bearer', { authorization: `Bearer ${secret}` }],
    ['Basic password', { authorization: basic('rudderstack', secret) }],
    ['Basic password, empty user', { authorization: basic('', secret) }],
  ])('accepts the secret as %s', (_carrier, headers) => {
    expect(webhookAuthorized(headers, secret)).toBe(true);
  });
  it.each([
    ['nothing', {}],
    ['a wrong X-Signature', { 'x-signature': 'nope' }],
    ['a wrong Bearer', { authorization: 'Bearer nope' }],
    ['the secret as Basic username', { authorization: basic(secret, '') }],
    ['a prefix of the secret', { 'x-signature': 's3cre' }],
  ])('refuses %s', (_case, headers) => {
    expect(webhookAuthorized(headers, secret)).toBe(false);
  });
  it('collects every carrier', () => {
    expect(webhookSecretCandidates({ 'x-signature': 'a', authorization: 'Bearer b' })).toEqual(['a', 'b']);
  });
});

describe('write key', () => {
  it('comes from the Basic username or the body', () => {
    expect(headerWriteKey({ authorization: basic('wk', '') })).toBe('wk');
    expect(headerWriteKey({ authorization: basic('', 'wk') })).toBeNull();
    expect(bodyWriteKey({ writeKey: 'wk', batch: [] })).toBe('wk');
    expect(bodyWriteKey({ writeKey: 3 })).toBeNull();
    expect(bodyWriteKey([{ writeKey: 'wk' }])).toBeNull();
    expect(bodyWriteKey(undefined)).toBeNull();
  });
});
