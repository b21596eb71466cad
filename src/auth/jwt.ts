/**
 * JWT bearer tokens: verified with `jose` against a shared secret (HS256/384/512, `JWT_SECRET`) or
 * the keys of a JWKS URL (`JWT_JWKS_URL`; fetched with a time limit, cached, refetched when a token
 * names a key id it does not know). Issuer and audience are checked when configured; `exp` and
 * `nbf` always. The claims become a principal in `principalFromClaims`, which is pure.
 */
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyOptions,
} from 'jose';
import { isScope, Scope, type Principal } from './scopes.js';

export interface JwtSettings {
  /** Shared secret of HMAC-signed tokens. */
  secret?: string;
  /** URL of the JSON Web Key Set of asymmetrically signed tokens. */
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  /** Claim (a dot path such as `realm_access.roles` is followed) with the scopes. */
  scopesClaim: string;
  /** Claim with the user the principal is bound to; unset = JWT principals are not user-bound. */
  userClaim?: string;
  /** Longest a JWKS fetch may take, ms. */
  jwksTimeoutMs: number;
  /** Leeway for `exp` and `nbf`, seconds. */
  clockToleranceSec: number;
}

/** `unavailable`: the JWKS could not be fetched (the token may be fine; the caller answers 503). */
export type JwtOutcome =
  { type: 'valid'; principal: Principal } | { type: 'invalid' } | { type: 'unavailable'; error: unknown };

export type JwtVerifier = (token: string) => Promise<JwtOutcome>;

const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'];
const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'EdDSA',
];

function claimAt(payload: JWTPayload, path: string): unknown {
  let value: unknown = payload;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function names(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/\s+/).filter((name) => name !== '');
  if (Array.isArray(value)) return value.filter((name): name is string => typeof name === 'string');
  return [];
}

/**
 * The principal of verified claims: `sub` is its id, the scopes claim (space-separated string or
 * array) and the `roles` claim give its scopes (names other than the service's scopes are
 * ignored), the user claim its user. Null when `sub` is missing.
 */
export function principalFromClaims(
  payload: JWTPayload,
  settings: Pick<JwtSettings, 'scopesClaim' | 'userClaim'>,
): Principal | null {
  if (typeof payload.sub !== 'string' || payload.sub === '') return null;
  const granted = [...names(claimAt(payload, settings.scopesClaim)), ...names(payload.roles)];
  const scopes = new Set(granted.filter(isScope));
  const user = settings.userClaim === undefined ? undefined : claimAt(payload, settings.userClaim);
  return {
    id: `jwt:${payload.sub}`,
    kind: 'jwt',
    scopes,
    userId: typeof user === 'string' && user !== '' && !scopes.has(Scope.Admin) ? user : null,
  };
}

export function createJwtVerifier(settings: JwtSettings): JwtVerifier {
  const secret = settings.secret === undefined ? undefined : new TextEncoder().encode(settings.secret);
  const jwks =
    settings.jwksUrl === undefined
      ? undefined
      : createRemoteJWKSet(new URL(settings.jwksUrl), {
          timeoutDuration: settings.jwksTimeoutMs,
          cooldownDuration: 30_000,
          cacheMaxAge: 10 * 60_000,
        });
  const common: JWTVerifyOptions = {
    issuer: settings.issuer,
    audience: settings.audience,
    clockTolerance: settings.clockToleranceSec,
    requiredClaims: ['sub', 'exp'],
  };
  return async (token) => {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return { type: 'invalid' };
    }
    const hmac = alg !== undefined && HMAC_ALGORITHMS.includes(alg);
    try {
      let payload: JWTPayload;
      if (hmac && secret) {
        ({ payload } = await jwtVerify(token, secret, { ...common, algorithms: HMAC_ALGORITHMS }));
      } else if (!hmac && jwks) {
        ({ payload } = await jwtVerify(token, jwks, { ...common, algorithms: ASYMMETRIC_ALGORITHMS }));
      } else {
        return { type: 'invalid' };
      }
      const principal = principalFromClaims(payload, settings);
      return principal ? { type: 'valid', principal } : { type: 'invalid' };
    } catch (error) {
      return isJwksUnavailable(error) ? { type: 'unavailable', error } : { type: 'invalid' };
    }
  };
}

/** The key set could not be fetched or read, as opposed to a token that does not verify. */
function isJwksUnavailable(error: unknown): boolean {
  if (error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid) return true;
  // Network failures of the fetch reach here as they are, not as jose errors.
  return !(error instanceof joseErrors.JOSEError);
}
