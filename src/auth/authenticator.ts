/**
 * Turns a bearer token into a principal: the `ADMIN_API_KEY` of the environment, an API key of the
 * database, or a JWT. Verified API keys are held in a bounded cache for `cacheTtlMs`, so that a
 * request costs a SHA-256 and a map lookup, not a query: a key revoked on this instance is dropped
 * from its cache at once, on other instances it stops working within the TTL.
 */
import { timingSafeEqual } from 'node:crypto';
import { CredentialCheckUnavailableError } from '../domain/errors.js';
import { guarded, type Db } from '../store/db.js';
import { findActiveKey, type ApiKeyRow } from '../store/api-keys.js';
import type { JwtVerifier } from './jwt.js';
import { hashKey, keyIdOf, looksLikeJwt } from './keys.js';
import { isScope, Scope, type Principal } from './scopes.js';
import { TtlCache } from './ttl-cache.js';

export interface AuthenticatorDeps {
  db: Db;
  /** `ADMIN_API_KEY`: an admin key that lives in the environment only. */
  adminApiKey?: string;
  /** Set when JWTs are accepted (`JWT_SECRET` or `JWT_JWKS_URL`). */
  jwt?: JwtVerifier;
  cacheTtlMs: number;
  cacheMaxEntries: number;
  now?: () => number;
}

export interface Authenticator {
  /** The principal of a token; null when it is not a valid credential. */
  authenticate(token: string): Promise<Principal | null>;
  /** Drops a key from this instance's cache (after revoking it). */
  forget(hash: string): void;
}

export const ENV_ADMIN_PRINCIPAL: Principal = Object.freeze({
  id: 'env:ADMIN_API_KEY',
  kind: 'api_key',
  scopes: new Set([Scope.Admin]),
  userId: null,
});

export function principalOfKey(row: Pick<ApiKeyRow, 'key_id' | 'scopes' | 'user_id'>): Principal {
  return {
    id: `key:${row.key_id}`,
    kind: 'api_key',
    scopes: new Set(row.scopes.filter(isScope)),
    userId: row.user_id,
  };
}

export function createAuthenticator(deps: AuthenticatorDeps): Authenticator {
  const now = deps.now ?? Date.now;
  const cache = new TtlCache<string, Principal>(deps.cacheMaxEntries, now);
  const adminHash =
    deps.adminApiKey === undefined ? undefined : Buffer.from(hashKey(deps.adminApiKey), 'hex');
  // Concurrent first requests of one key share one lookup.
  const inFlight = new Map<string, Promise<Principal | null>>();

  async function lookUp(hash: string): Promise<Principal | null> {
    const row = await guarded(() => findActiveKey(deps.db, hash));
    if (!row) return null;
    const principal = principalOfKey(row);
    const ttl =
      row.expires_at === null ? deps.cacheTtlMs : Math.min(deps.cacheTtlMs, row.expires_at.getTime() - now());
    cache.set(hash, principal, ttl);
    return principal;
  }

  async function apiKey(token: string): Promise<Principal | null> {
    const hash = hashKey(token);
    if (adminHash && timingSafeEqual(Buffer.from(hash, 'hex'), adminHash)) return ENV_ADMIN_PRINCIPAL;
    // Only keys of this service's format are in the database: anything else costs no query.
    if (keyIdOf(token) === null) return null;
    const cached = cache.get(hash);
    if (cached) return cached;
    let pending = inFlight.get(hash);
    if (!pending) {
      pending = lookUp(hash).finally(() => inFlight.delete(hash));
      inFlight.set(hash, pending);
    }
    return pending;
  }

  return {
    async authenticate(token) {
      if (!looksLikeJwt(token)) return apiKey(token);
      if (!deps.jwt) return null;
      const outcome = await deps.jwt(token);
      if (outcome.type === 'unavailable') {
        throw new CredentialCheckUnavailableError('The identity provider’s keys cannot be fetched', {
          cause: outcome.error,
        });
      }
      return outcome.type === 'valid' ? outcome.principal : null;
    },
    forget(hash) {
      cache.delete(hash);
    },
  };
}
