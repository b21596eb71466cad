/**
 * Authentication and authorization of the HTTP API. Registered on the root instance before any
 * route: an `onRoute` hook gives every route the access of its policy entry (policy.ts; none =
 * `admin`), prepends the check to the protected ones, and writes the bearer security requirement
 * into their OpenAPI schema. The check, per request:
 *
 * 1. `Authorization: Bearer <API key or JWT>` → a principal (authenticator.ts), or a 401 with
 *    `WWW-Authenticate: Bearer` (counted against the client IP's limit first: 429 past it);
 * 2. the principal's own limit (admins have none): 429 with `Retry-After` past it;
 * 3. the scope the route needs: 403 without it.
 *
 * Handlers find the principal in `request.principal` (user-bound principals: ownership.ts).
 */
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { ForbiddenError, RateLimitedError, UnauthorizedError } from '../domain/errors.js';
import { errorResponses } from '../http/schema-helpers.js';
import type { Authenticator } from './authenticator.js';
import { bearerToken } from './keys.js';
import { Access, policyEntry, POLICY, type PolicyEntry } from './policy.js';
import { RateLimiter } from './rate-limit.js';
import { hasScope, isAdmin, type Principal } from './scopes.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the request speaks for; null on public routes. */
    principal: Principal | null;
  }
  interface FastifyInstance {
    /** Every route registered so far with the access it was given (tests assert on it). */
    routeAccess: readonly RouteAccess[];
  }
}

export interface RouteAccess {
  method: string;
  url: string;
  access: Access;
  /** False when the route has no policy entry and fell back to `admin`. */
  explicit: boolean;
}

export interface AuthPluginDeps {
  authenticator: Authenticator;
  /** `RATE_LIMIT_PER_MINUTE`: requests a minute per credential (admins exempt); 0 = no limit. */
  perCredentialPerMinute: number;
  /** `RATE_LIMIT_IP_PER_MINUTE`: requests a minute per client IP without a valid credential; 0 = no limit. */
  perIpPerMinute: number;
  clientIp: (request: FastifyRequest) => string;
  policy?: readonly PolicyEntry[];
}

export const BEARER_SCHEME = 'bearerAuth';
const CHALLENGE = 'Bearer realm="event-service"';

function describe(access: Access): string {
  return access === Access.Authenticated ? 'a valid credential' : `the scope ${access}`;
}

function allows(principal: Principal, access: Access): boolean {
  if (access === Access.Public || access === Access.Authenticated) return true;
  return hasScope(principal, access);
}

/** The access of a route of one or more methods: the same for all, or else `admin`. */
function routeAccessOf(
  methods: string[],
  url: string,
  policy: readonly PolicyEntry[],
): { access: Access; explicit: boolean } {
  const entries = methods.map((method) => policyEntry(method, url, policy));
  const first = entries[0];
  if (!first || entries.some((entry) => entry?.access !== first.access))
    return { access: Access.Admin, explicit: entries.every((entry) => entry !== undefined) };
  return { access: first.access, explicit: true };
}

export function registerAuth(app: FastifyInstance, deps: AuthPluginDeps): void {
  const policy = deps.policy ?? POLICY;
  const credentialLimit = new RateLimiter(deps.perCredentialPerMinute);
  const ipLimit = new RateLimiter(deps.perIpPerMinute);
  const routes: RouteAccess[] = [];
  app.decorateRequest('principal', null);
  app.decorate('routeAccess', routes);

  type Check = (request: FastifyRequest) => Promise<void>;
  const checks = new Map<Access, Check>();
  const checkFor = (access: Access): Check => {
    let check = checks.get(access);
    if (!check) {
      check = async (request: FastifyRequest) => {
        request.principal = await authenticate(request);
        if (!allows(request.principal, access)) {
          throw new ForbiddenError(`This credential lacks ${describe(access)}`);
        }
      };
      checks.set(access, check);
    }
    return check;
  };
  const ownChecks = new Set<unknown>();

  async function authenticate(request: FastifyRequest): Promise<Principal> {
    const parsed = bearerToken(request.headers.authorization);
    const principal = parsed.type === 'token' ? await deps.authenticator.authenticate(parsed.token) : null;
    if (!principal) {
      const decision = ipLimit.hit(`ip:${deps.clientIp(request)}`);
      if (!decision.allowed) {
        throw new RateLimitedError(
          `Rate limit exceeded: at most ${ipLimit.perMinute} requests a minute per client without a valid credential`,
          decision.retryAfterSeconds,
        );
      }
      throw parsed.type === 'missing'
        ? new UnauthorizedError('Missing credential: send Authorization: Bearer <API key or JWT>', CHALLENGE)
        : new UnauthorizedError('Invalid credential', `${CHALLENGE}, error="invalid_token"`);
    }
    if (!isAdmin(principal)) {
      const decision = credentialLimit.hit(principal.id);
      if (!decision.allowed) {
        throw new RateLimitedError(
          `Rate limit exceeded: at most ${credentialLimit.perMinute} requests a minute per credential`,
          decision.retryAfterSeconds,
        );
      }
    }
    return principal;
  }

  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).map((m) => m.toUpperCase());
    const { access, explicit } = routeAccessOf(methods, route.url, policy);
    for (const method of methods) routes.push({ method, url: route.url, access, explicit });
    if (route.schema) {
      route.schema = {
        ...route.schema,
        security: access === Access.Public ? [] : [{ [BEARER_SCHEME]: [] }],
        ...(access !== Access.Public && route.schema.response
          ? { response: { ...errorResponses(401, 403, 429), ...route.schema.response } }
          : {}),
      };
    }
    if (access === Access.Public) return;
    const check = checkFor(access);
    ownChecks.add(check);
    const existing = route.onRequest === undefined ? [] : [route.onRequest].flat();
    // The check comes first; a route cloned from another (HEAD from GET) does not get it twice.
    route.onRequest = [check, ...existing.filter((hook) => !ownChecks.has(hook))];
  });
}
