/**
 * Consul registration (the seed's `routes_registry.py` and `ConsulRegistry`): the agent's service
 * definition, built here from pure functions (identity, the seed's tags and capabilities, compact
 * route groups within Consul's metadata limits, an HTTP check on `/health`), and a background
 * registrar that puts it to the local agent's HTTP API, retrying with backoff while the agent is
 * down, and takes it back at shutdown within a time limit.
 *
 * Consul never stops the service: start-up does not wait for it, every failure is logged and none
 * is thrown out. Agent API: `PUT /v1/agent/service/register`, `PUT /v1/agent/service/deregister/:id`
 * (both answer 200 with an empty body). docs/operations.md shows a payload.
 */
import type { NetworkInterfaceInfo } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { Agent as HttpAgent, request, type Dispatcher } from 'undici';
import { backoffMs } from '../processing/retry.js';

export const SERVICE_NAME = 'event_service';
/** The seed's tags (SERVICE_METADATA). */
export const SERVICE_TAGS = ['v1', 'user-microservice', 'event-management', 'event-sourcing'] as const;
/** The seed's capabilities, then the ones this service adds. */
export const CAPABILITIES = [
  'event_creation',
  'event_query',
  'event_streaming',
  'event_replay',
  'event_subscriptions',
  'event_processors',
  'frontend_collection',
  'rudderstack_integration',
  'event_projections',
  'tracking_api',
  'nats_ingest',
] as const;
export const BASE_PATH = '/api/v1/events';

/** Consul's limits on service metadata (hashicorp/consul agent/structs: `validateMetaPair`). */
export const META_LIMITS = { pairs: 64, keyLength: 128, valueBytes: 512 } as const;
const META_KEY = /^[A-Za-z0-9_-]+$/;
const META_RESERVED_PREFIX = 'consul-';

/** The HTTP check: how often the agent calls `/health`, how long it waits, and when it gives up on us. */
export const CHECK = { interval: '10s', timeout: '5s', deregisterCriticalServiceAfter: '1m' } as const;
/** Longest one call to the agent may take (connect, send, answer), ms. */
export const AGENT_TIMEOUT_MS = 5000;
/** Registration retries while the agent is down: first delay, longest delay (equal jitter), ms. */
export const RETRY = { baseMs: 500, maxMs: 15_000 } as const;

export interface Route {
  method: string;
  path: string;
  /** The capability it belongs to (its first OpenAPI tag). */
  group: string;
}

/** The body of `PUT /v1/agent/service/register`, field names as the agent expects them. */
export interface ServiceDefinition {
  ID: string;
  Name: string;
  Tags: string[];
  Address: string;
  Port: number;
  Meta: Record<string, string>;
  EnableTagOverride: boolean;
  Check: {
    Name: string;
    HTTP: string;
    Method: 'GET';
    Interval: string;
    Timeout: string;
    DeregisterCriticalServiceAfter: string;
  };
}

// ---------------------------------------------------------------------------------------------
// Pure: the definition

const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE'] as const;

/** The routes of an OpenAPI document (`app.swagger()`): each operation with its first tag as group. */
export function routesFromOpenApi(doc: unknown): Route[] {
  const paths = (doc as { paths?: unknown } | null)?.paths;
  if (paths === null || typeof paths !== 'object') return [];
  const routes: Route[] = [];
  for (const [path, item] of Object.entries(paths as Record<string, unknown>)) {
    if (item === null || typeof item !== 'object') continue;
    for (const [key, operation] of Object.entries(item as Record<string, unknown>)) {
      const method = key.toUpperCase();
      if (!(HTTP_METHODS as readonly string[]).includes(method)) continue;
      const tags = (operation as { tags?: unknown } | null)?.tags;
      const group = Array.isArray(tags) && typeof tags[0] === 'string' ? tags[0] : 'other';
      routes.push({ method, path, group });
    }
  }
  return routes;
}

/** A metadata key Consul accepts, from any name: invalid characters become `_`, lower case. */
function metaKey(name: string): string {
  const key = name
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '_')
    // Room for a `routes_` prefix and a `_NN` suffix.
    .slice(0, META_LIMITS.keyLength - 12);
  return key === '' || key.startsWith(META_RESERVED_PREFIX) ? `routes_${key}` : key;
}

const bytes = (value: string) => Buffer.byteLength(value, 'utf8');

/**
 * Compact route metadata, as the seed's `get_routes_for_consul()`: `route_count` (paths),
 * `base_path`, `methods`, and one key per group (`events`, `subscriptions`, `health` …) whose value
 * lists the group's routes as `GET,POST /path` joined by `|`. A value that would pass
 * Consul's 512 bytes continues in `<group>_2`, `<group>_3` …; routes that fit in no key (more than
 * 64 pairs) are counted in `routes_omitted`. Never more than `maxPairs` keys.
 */
export function routeMeta(
  routes: readonly Route[],
  options: { basePath: string; maxPairs: number; reserved: readonly string[] },
): Record<string, string> {
  const byGroup = new Map<string, Map<string, Set<string>>>();
  for (const route of routes) {
    const paths = byGroup.get(route.group) ?? new Map<string, Set<string>>();
    byGroup.set(route.group, paths);
    const methods = paths.get(route.path) ?? new Set<string>();
    paths.set(route.path, methods);
    methods.add(route.method.toUpperCase());
  }
  const order = (method: string) => {
    const index = (HTTP_METHODS as readonly string[]).indexOf(method);
    return index < 0 ? HTTP_METHODS.length : index;
  };
  const sortMethods = (methods: Iterable<string>) =>
    [...methods].sort((a, b) => order(a) - order(b) || a.localeCompare(b));

  const meta: Record<string, string> = {
    route_count: String(new Set(routes.map((route) => route.path)).size),
    base_path: options.basePath,
    methods: sortMethods(new Set(routes.map((route) => route.method.toUpperCase()))).join(','),
  };
  const taken = new Set([...options.reserved, ...Object.keys(meta)]);
  // One pair is kept for `routes_omitted`.
  const room = () => options.maxPairs - options.reserved.length - Object.keys(meta).length - 1;
  let omitted = 0;
  for (const [group, paths] of byGroup) {
    const entries = [...paths].map(([path, methods]) => `${sortMethods(methods).join(',')} ${path}`);
    let base = metaKey(group);
    if (taken.has(base)) base = metaKey(`routes_${group}`);
    const chunks: string[] = [];
    for (const entry of entries) {
      const last = chunks.length - 1;
      if (bytes(entry) > META_LIMITS.valueBytes) omitted++;
      else if (last >= 0 && bytes(`${chunks[last]}|${entry}`) <= META_LIMITS.valueBytes)
        chunks[last] = `${chunks[last]}|${entry}`;
      else chunks.push(entry);
    }
    for (const [index, chunk] of chunks.entries()) {
      const key = index === 0 ? base : `${base}_${index + 1}`;
      if (room() <= 0 || taken.has(key)) {
        omitted += chunk.split('|').length;
        continue;
      }
      taken.add(key);
      meta[key] = chunk;
    }
  }
  if (omitted > 0) meta.routes_omitted = String(omitted);
  return meta;
}

/** What Consul would refuse in this metadata (its own checks); empty when it is valid. */
export function metaProblems(meta: Readonly<Record<string, string>>): string[] {
  const problems: string[] = [];
  const keys = Object.keys(meta);
  if (keys.length > META_LIMITS.pairs) problems.push(`${keys.length} pairs (limit ${META_LIMITS.pairs})`);
  for (const key of keys) {
    if (!META_KEY.test(key)) problems.push(`key ${JSON.stringify(key)} has invalid characters`);
    if (key.length > META_LIMITS.keyLength) problems.push(`key ${key} is too long`);
    if (key.startsWith(META_RESERVED_PREFIX)) problems.push(`key ${key} uses the reserved prefix`);
    if (bytes(meta[key]!) > META_LIMITS.valueBytes) problems.push(`value of ${key} is too long`);
  }
  return problems;
}

/** `host` as it goes into a URL (IPv6 in brackets). */
export function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** Unique per instance: name, address and port, in characters that are safe in a URL path. */
export function serviceId(address: string, port: number): string {
  return `${SERVICE_NAME}-${address}-${port}`.replace(/[^A-Za-z0-9_.-]/g, '-');
}

/**
 * The address other services should call: `SERVICE_ADDRESS`, else `HOST` when it names one
 * interface, else the first external IPv4 (then IPv6) address of this machine, else its host name.
 */
export function advertisedAddress(
  configured: { serviceAddress: string | undefined; host: string },
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>,
  hostname: string,
): string {
  if (configured.serviceAddress !== undefined) return configured.serviceAddress;
  if (!['0.0.0.0', '::', '[::]', ''].includes(configured.host)) return configured.host;
  const external = Object.values(interfaces)
    .flatMap((list) => list ?? [])
    .filter((info) => !info.internal);
  const v4 = external.find((info) => info.family === 'IPv4');
  if (v4) return v4.address;
  const v6 = external.find(
    (info) => info.family === 'IPv6' && !info.address.toLowerCase().startsWith('fe80'),
  );
  return v6?.address ?? hostname;
}

export interface DefinitionInput {
  address: string;
  port: number;
  version: string;
  routes: readonly Route[];
}

/** The service definition this instance registers. */
export function buildServiceDefinition(input: DefinitionInput): ServiceDefinition {
  const fixed = { version: input.version, capabilities: CAPABILITIES.join(',') };
  const meta = {
    ...fixed,
    ...routeMeta(input.routes, {
      basePath: BASE_PATH,
      maxPairs: META_LIMITS.pairs,
      reserved: Object.keys(fixed),
    }),
  };
  return {
    ID: serviceId(input.address, input.port),
    Name: SERVICE_NAME,
    Tags: [...SERVICE_TAGS],
    Address: input.address,
    Port: input.port,
    Meta: meta,
    EnableTagOverride: false,
    Check: {
      Name: `${SERVICE_NAME} HTTP /health`,
      HTTP: `http://${urlHost(input.address)}:${input.port}/health`,
      Method: 'GET',
      Interval: CHECK.interval,
      Timeout: CHECK.timeout,
      DeregisterCriticalServiceAfter: CHECK.deregisterCriticalServiceAfter,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// I/O: the agent's HTTP API

export type AgentCallResult = { type: 'ok' } | { type: 'error'; status?: number; message: string };

export interface ConsulAgent {
  register(definition: ServiceDefinition, signal: AbortSignal): Promise<AgentCallResult>;
  deregister(id: string, signal: AbortSignal): Promise<AgentCallResult>;
  /** Drops the connections to the agent; never waits for a call in flight. */
  close(): Promise<void>;
}

export interface AgentOptions {
  host: string;
  port: number;
  /** ACL token (`X-Consul-Token`); never logged. */
  token?: string;
  /** Longest one call may take, ms. Default AGENT_TIMEOUT_MS. */
  timeoutMs?: number;
}

function describe(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    const message = e instanceof Error ? e.message : typeof e === 'string' ? e : 'error';
    parts.push(typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message);
  }
  return [...new Set(parts)].join(': ').slice(0, 300) || 'network error';
}

/** At most `limit` bytes of a body, the rest discarded. */
async function excerpt(body: Dispatcher.ResponseData['body'], limit = 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let kept = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (kept < limit) {
      const part = chunk.subarray(0, limit - kept);
      chunks.push(part);
      kept += part.length;
    } else {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8').trim();
}

/** A thin client of the agent's service endpoints: one call, one result; never throws. */
export function createConsulAgent(options: AgentOptions): ConsulAgent {
  const timeoutMs = options.timeoutMs ?? AGENT_TIMEOUT_MS;
  const base = `http://${urlHost(options.host)}:${options.port}`;
  const dispatcher = new HttpAgent({ connect: { timeout: timeoutMs }, connections: 2 });

  async function put(path: string, body: string | undefined, signal: AbortSignal): Promise<AgentCallResult> {
    const timeout = AbortSignal.timeout(timeoutMs);
    try {
      const response = await request(`${base}${path}`, {
        method: 'PUT',
        dispatcher,
        signal: AbortSignal.any([signal, timeout]),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(options.token === undefined ? {} : { 'x-consul-token': options.token }),
        },
        body,
      });
      const text = await excerpt(response.body);
      if (response.statusCode >= 200 && response.statusCode < 300) return { type: 'ok' };
      return {
        type: 'error',
        status: response.statusCode,
        message: `HTTP ${response.statusCode}${text ? `: ${text.slice(0, 300)}` : ''}`,
      };
    } catch (error) {
      if (timeout.aborted) return { type: 'error', message: `timed out after ${timeoutMs} ms` };
      if (signal.aborted) return { type: 'error', message: 'cancelled' };
      return { type: 'error', message: describe(error) };
    }
  }

  return {
    register: (definition, signal) =>
      put('/v1/agent/service/register?replace-existing-checks=true', JSON.stringify(definition), signal),
    deregister: (id, signal) =>
      put(`/v1/agent/service/deregister/${encodeURIComponent(id)}`, undefined, signal),
    // Called once nothing more is to be sent: whatever is still open is dropped, never awaited.
    close: () => dispatcher.destroy(),
  };
}

// ---------------------------------------------------------------------------------------------
// The registrar: register in the background, deregister at shutdown

/**
 * Statuses after which registering again cannot help: the agent refused the definition itself
 * (400: invalid field or metadata). Everything else (connection refused, timeouts, 5xx, 403 while
 * an ACL policy is being fixed) is retried with backoff.
 */
const PERMANENT_STATUSES: ReadonlySet<number> = new Set([400]);

export type RegistrarStatus = 'registering' | 'registered' | 'rejected' | 'deregistered' | 'stopped';

export interface Registrar {
  status(): RegistrarStatus;
  /**
   * Stops registering and takes the registration back if one may have reached the agent, within
   * `timeoutMs`. Never throws; a failure is logged (the agent's check then finds the service gone
   * and `DeregisterCriticalServiceAfter` removes it).
   */
  deregister(timeoutMs: number): Promise<void>;
}

export interface RegistrarOptions {
  agent: ConsulAgent;
  definition: ServiceDefinition;
  logger?: Logger;
  retry?: { baseMs: number; maxMs: number };
  /** In [0, 1); jitter of the retry delays. */
  random?: () => number;
}

/** Registers in the background, never blocking or failing start-up. */
export function startConsulRegistration(options: RegistrarOptions): Registrar {
  const { agent, definition, logger } = options;
  const retry = options.retry ?? RETRY;
  const random = options.random ?? Math.random;
  const stopping = new AbortController();
  let status: RegistrarStatus = 'registering';
  let attempted = false;

  const running = (async () => {
    for (let attempt = 1; !stopping.signal.aborted; attempt++) {
      attempted = true;
      const result = await agent.register(definition, stopping.signal);
      if (stopping.signal.aborted) return;
      if (result.type === 'ok') {
        status = 'registered';
        logger?.info(
          { consul_service_id: definition.ID, attempts: attempt, routes: definition.Meta.route_count },
          'registered with Consul',
        );
        return;
      }
      if (result.status !== undefined && PERMANENT_STATUSES.has(result.status)) {
        status = 'rejected';
        logger?.error(
          { consul_service_id: definition.ID, reason: result.message },
          'Consul refused the service definition; not registered',
        );
        return;
      }
      const delay = backoffMs(attempt, retry, random());
      if (attempt === 1 || attempt % 10 === 0) {
        logger?.warn(
          { consul_service_id: definition.ID, attempt, reason: result.message, retry_in_ms: delay },
          'Consul registration failed; retrying in the background',
        );
      }
      await sleep(delay, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
  })().catch((error: unknown) => {
    // Nothing above throws; should it ever, the service goes on unregistered rather than crash.
    status = 'stopped';
    logger?.error({ err: error }, 'Consul registration stopped on an unexpected error');
  });

  return {
    status: () => status,
    async deregister(timeoutMs) {
      stopping.abort();
      // Bounded: the call in flight is aborted with the signal, the wait between attempts too.
      await running;
      if (!attempted || status === 'rejected') {
        status = 'stopped';
        return;
      }
      const result = await agent.deregister(definition.ID, AbortSignal.timeout(timeoutMs));
      if (result.type === 'ok') {
        status = 'deregistered';
        logger?.info({ consul_service_id: definition.ID }, 'deregistered from Consul');
      } else {
        status = 'stopped';
        // 404: the agent does not know the id (it was never registered, or was removed already).
        if (result.status === 404)
          logger?.info({ consul_service_id: definition.ID }, 'not registered with Consul');
        else
          logger?.warn(
            { consul_service_id: definition.ID, reason: result.message },
            'Consul deregistration failed; the agent removes the service once its check stays critical',
          );
      }
    },
  };
}
