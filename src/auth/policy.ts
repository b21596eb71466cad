/**
 * Who may call what: every route of the service, by method and URL pattern (as registered with
 * Fastify), with the access it needs. The auth plugin (plugin.ts) reads this table for each route
 * as it is registered; a route that is not in it needs `admin` (fail closed), and a test asserts
 * that every registered route has an entry here, so that a new route cannot go unprotected.
 *
 * Pure: a table and a lookup.
 */
import { Scope } from './scopes.js';

export const Access = {
  /** No credential (health, docs, the ingest channels with credentials of their own). */
  Public: 'public',
  /** Any valid credential, whatever its scopes. */
  Authenticated: 'authenticated',
  Read: Scope.EventsRead,
  Write: Scope.EventsWrite,
  Admin: Scope.Admin,
} as const;
export type Access = (typeof Access)[keyof typeof Access];

export interface PolicyEntry {
  /** Upper case; `*` for every method. HEAD follows GET. */
  method: string;
  /** A Fastify route pattern (`/api/v1/events/:event_id`); a trailing `*` matches any rest. */
  url: string;
  access: Access;
}

const E = '/api/v1/events';

export const POLICY: readonly PolicyEntry[] = [
  // Health, documentation.
  { method: 'GET', url: '/', access: Access.Public },
  { method: 'GET', url: '/health', access: Access.Public },
  { method: 'GET', url: '/health/ready', access: Access.Public },
  { method: 'GET', url: '/docs*', access: Access.Public },
  // Prometheus metrics: the operator's, unless METRICS_PUBLIC=true (`policyWith`).
  { method: 'GET', url: '/metrics', access: Access.Admin },
  // Ingest channels with their own credentials or none (README "Authentication").
  { method: '*', url: `${E}/frontend*`, access: Access.Public },
  { method: 'POST', url: '/webhooks/rudderstack', access: Access.Public },
  { method: 'POST', url: '/v1/*', access: Access.Public },
  // Events.
  { method: 'POST', url: `${E}/create`, access: Access.Write },
  { method: 'POST', url: `${E}/batch`, access: Access.Write },
  { method: 'GET', url: `${E}/:event_id`, access: Access.Read },
  { method: 'POST', url: `${E}/query`, access: Access.Read },
  { method: 'GET', url: `${E}/statistics`, access: Access.Read },
  // Streams and projections.
  { method: 'GET', url: `${E}/streams`, access: Access.Read },
  { method: 'GET', url: `${E}/stream/:stream_id`, access: Access.Read },
  { method: 'GET', url: `${E}/projections/:entity_type/:entity_id`, access: Access.Read },
  { method: 'GET', url: `${E}/projections`, access: Access.Admin },
  { method: 'POST', url: `${E}/projections`, access: Access.Admin },
  { method: 'GET', url: `${E}/projections/:name`, access: Access.Admin },
  { method: 'DELETE', url: `${E}/projections/:name`, access: Access.Admin },
  { method: 'POST', url: `${E}/projections/:name/rebuild`, access: Access.Admin },
  // Processing: processors, dead letters, retries and results are the operator's.
  { method: '*', url: `${E}/processors`, access: Access.Admin },
  { method: '*', url: `${E}/processors/*`, access: Access.Admin },
  { method: 'GET', url: `${E}/failed`, access: Access.Admin },
  { method: 'POST', url: `${E}/:event_id/retry`, access: Access.Admin },
  { method: 'GET', url: `${E}/:event_id/results`, access: Access.Admin },
  { method: 'GET', url: `${E}/dead-letters`, access: Access.Admin },
  // Webhook subscriptions, replay.
  { method: '*', url: `${E}/subscriptions`, access: Access.Admin },
  { method: '*', url: `${E}/subscriptions/*`, access: Access.Admin },
  { method: '*', url: `${E}/replay`, access: Access.Admin },
  { method: '*', url: `${E}/replay/*`, access: Access.Admin },
  // Credentials.
  { method: '*', url: '/api/v1/auth/keys', access: Access.Admin },
  { method: '*', url: '/api/v1/auth/keys/*', access: Access.Admin },
  { method: 'GET', url: '/api/v1/auth/whoami', access: Access.Authenticated },
];

/** The policy of a configuration: `metricsPublic` (METRICS_PUBLIC) makes `GET /metrics` public. */
export function policyWith(options: { metricsPublic: boolean }): readonly PolicyEntry[] {
  return options.metricsPublic
    ? [{ method: 'GET', url: '/metrics', access: Access.Public }, ...POLICY]
    : POLICY;
}

function matchesUrl(pattern: string, url: string): boolean {
  return pattern.endsWith('*') ? url.startsWith(pattern.slice(0, -1)) : pattern === url;
}

function matchesMethod(entry: string, method: string): boolean {
  return entry === '*' || entry === method || (entry === 'GET' && method === 'HEAD');
}

/** The entry of a route; undefined when the table has none. The first match wins. */
export function policyEntry(
  method: string,
  url: string,
  policy: readonly PolicyEntry[] = POLICY,
): PolicyEntry | undefined {
  const upper = method.toUpperCase();
  return policy.find((entry) => matchesMethod(entry.method, upper) && matchesUrl(entry.url, url));
}

/** The access a route needs: its entry's, or `admin` when it has none (fail closed). */
export function accessFor(method: string, url: string, policy: readonly PolicyEntry[] = POLICY): Access {
  return policyEntry(method, url, policy)?.access ?? Access.Admin;
}
