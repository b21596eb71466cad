/** Wires authentication from the configuration: the authenticator (API keys, JWTs) and the hooks. */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { clientIp, trustedProxies } from '../ingest/client-ip.js';
import type { Db } from '../store/db.js';
import { createAuthenticator, type Authenticator } from './authenticator.js';
import { createJwtVerifier } from './jwt.js';
import { registerAuth } from './plugin.js';
import { policyWith } from './policy.js';

export { authRoutes } from './routes.js';

/** Leeway for a JWT's `exp` and `nbf` (clocks of the identity provider and this host differ). */
const JWT_CLOCK_TOLERANCE_SEC = 5;

/** Call on the root instance before any route is registered. */
export function setUpAuth(app: FastifyInstance, config: Config, db: Db): Authenticator {
  const jwtConfigured = config.jwtSecret !== undefined || config.jwtJwksUrl !== undefined;
  const authenticator = createAuthenticator({
    db,
    adminApiKey: config.adminApiKey,
    jwt: jwtConfigured
      ? createJwtVerifier({
          secret: config.jwtSecret,
          jwksUrl: config.jwtJwksUrl,
          issuer: config.jwtIssuer,
          audience: config.jwtAudience,
          scopesClaim: config.jwtScopesClaim,
          userClaim: config.jwtUserClaim,
          jwksTimeoutMs: config.jwtJwksTimeoutMs,
          clockToleranceSec: JWT_CLOCK_TOLERANCE_SEC,
        })
      : undefined,
    cacheTtlMs: config.authCacheTtlMs,
    cacheMaxEntries: config.authCacheMaxEntries,
  });
  const proxies = trustedProxies(config.trustedProxies);
  registerAuth(app, {
    authenticator,
    perCredentialPerMinute: config.rateLimitPerMinute,
    perIpPerMinute: config.rateLimitIpPerMinute,
    policy: policyWith({ metricsPublic: config.metricsPublic }),
    clientIp: (request) =>
      clientIp(request.socket.remoteAddress, request.headers['x-forwarded-for'], proxies),
  });
  return authenticator;
}
