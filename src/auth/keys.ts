/**
 * API keys: `esk_<key id>_<secret>`. The key id (12 hex characters) is public: it names the key in
 * lists, logs and `DELETE /api/v1/auth/keys/{key_id}`. The secret is 32 random bytes (base64url).
 * Only the SHA-256 of the whole key is stored: for a high-entropy random key a fast hash is as safe
 * as a slow one, and it lets a request find its key with one index probe on the hash (no
 * comparison of secrets that could leak through timing). Pure apart from the random bytes.
 */
import { createHash, randomBytes } from 'node:crypto';

export const KEY_PREFIX = 'esk_';

export interface GeneratedKey {
  keyId: string;
  /** The key itself: shown once, never stored. */
  key: string;
  hash: string;
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function generateApiKey(random: (size: number) => Buffer = randomBytes): GeneratedKey {
  const keyId = random(6).toString('hex');
  const key = `${KEY_PREFIX}${keyId}_${random(32).toString('base64url')}`;
  return { keyId, key, hash: hashKey(key) };
}

/** The key id of a key of this service's format; null for anything else. */
export function keyIdOf(key: string): string | null {
  const match = /^esk_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$/.exec(key);
  return match ? match[1]! : null;
}

/** A JWT (compact JWS) has three dot-separated parts; an API key has no dot. */
export function looksLikeJwt(token: string): boolean {
  return token.split('.').length === 3;
}

/**
 * The token of an `Authorization: Bearer <token>` header. `missing` when there is no such header
 * (or it is of another scheme), `malformed` when it is Bearer without a usable token.
 */
export function bearerToken(
  header: string | string[] | undefined,
): { type: 'token'; token: string } | { type: 'missing' } | { type: 'malformed' } {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return { type: 'missing' };
  const match = /^Bearer(?:\s+(\S*))?\s*$/i.exec(value);
  if (!match) return /^Bearer\b/i.test(value) ? { type: 'malformed' } : { type: 'missing' };
  const token = match[1] ?? '';
  // Longest accepted token: generous for JWTs with many claims, bounded for hashing.
  if (token === '' || token.length > 8192) return { type: 'malformed' };
  return { type: 'token', token };
}
