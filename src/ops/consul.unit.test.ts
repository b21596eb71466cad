import { describe, expect, it } from 'vitest';
import {
  advertisedAddress,
  buildServiceDefinition,
  CAPABILITIES,
  META_LIMITS,
  metaProblems,
  routeMeta,
  routesFromOpenApi,
  serviceId,
  startConsulRegistration,
  type AgentCallResult,
  type ConsulAgent,
  type Route,
  type ServiceDefinition,
} from './consul.js';

const SERVICE_ROUTES: Route[] = [
  { method: 'GET', path: '/health', group: 'health' },
  { method: 'GET', path: '/health/ready', group: 'health' },
  { method: 'POST', path: '/api/v1/events/create', group: 'events' },
  { method: 'POST', path: '/api/v1/events/batch', group: 'events' },
  { method: 'GET', path: '/api/v1/events/{event_id}', group: 'events' },
  { method: 'GET', path: '/api/v1/events/subscriptions', group: 'subscriptions' },
  { method: 'POST', path: '/api/v1/events/subscriptions', group: 'subscriptions' },
  { method: 'DELETE', path: '/api/v1/events/subscriptions/{subscription_id}', group: 'subscriptions' },
  { method: 'GET', path: '/api/v1/events/subscriptions/{subscription_id}', group: 'subscriptions' },
  { method: 'POST', path: '/webhooks/rudderstack', group: 'ingest' },
];

function definition(routes: Route[] = SERVICE_ROUTES): ServiceDefinition {
  return buildServiceDefinition({ address: '10.1.2.3', port: 8230, version: '1.2.3', routes });
}

describe('the Consul service definition', () => {
  it("carries the seed's name, tags and capabilities, and an HTTP check on /health", () => {
    const def = definition();
    expect(def).toMatchObject({
      ID: 'event_service-10.1.2.3-8230',
      Name: 'event_service',
      Tags: ['v1', 'user-microservice', 'event-management', 'event-sourcing'],
      Address: '10.1.2.3',
      Port: 8230,
      Check: {
        HTTP: 'http://10.1.2.3:8230/health',
        Method: 'GET',
        Interval: '10s',
        Timeout: '5s',
        DeregisterCriticalServiceAfter: '1m',
      },
    });
    expect(def.Meta.version).toBe('1.2.3');
    expect(def.Meta.capabilities!.split(',')).toEqual([...CAPABILITIES]);
    for (const seed of [
      'event_creation',
      'event_query',
      'event_streaming',
      'event_replay',
      'event_subscriptions',
      'event_processors',
      'frontend_collection',
      'rudderstack_integration',
    ])
      expect(def.Meta.capabilities).toContain(seed);
    expect(metaProblems(def.Meta)).toEqual([]);
  });

  it('lists the routes compactly, by group, with their methods', () => {
    expect(definition().Meta).toMatchObject({
      route_count: '8',
      base_path: '/api/v1/events',
      methods: 'GET,POST,DELETE',
      health: 'GET /health|GET /health/ready',
      events: 'POST /api/v1/events/create|POST /api/v1/events/batch|GET /api/v1/events/{event_id}',
      subscriptions:
        'GET,POST /api/v1/events/subscriptions|GET,DELETE /api/v1/events/subscriptions/{subscription_id}',
      ingest: 'POST /webhooks/rudderstack',
    });
    expect(definition().Meta.routes_omitted).toBeUndefined();
  });

  it('keeps every value within 512 bytes by continuing a long group in numbered keys', () => {
    const routes: Route[] = Array.from({ length: 120 }, (_, i) => ({
      method: i % 2 === 0 ? 'GET' : 'POST',
      path: `/api/v1/events/a-rather-long-resource-name-${i}/{some_identifier}/é`,
      group: 'events',
    }));
    const meta = definition(routes).Meta;
    expect(metaProblems(meta)).toEqual([]);
    const keys = Object.keys(meta).filter((key) => key === 'events' || key.startsWith('events_'));
    expect(keys.length).toBeGreaterThan(10);
    expect(keys.slice(0, 3)).toEqual(['events', 'events_2', 'events_3']);
    for (const key of keys) expect(Buffer.byteLength(meta[key]!, 'utf8')).toBeLessThanOrEqual(512);
    // Nothing lost: every route is listed once, in order.
    const listed = keys.flatMap((key) => meta[key]!.split('|'));
    expect(listed).toEqual(routes.map((route) => `${route.method} ${route.path}`));
    expect(meta.routes_omitted).toBeUndefined();
  });

  it('never passes 64 pairs: what does not fit is counted in routes_omitted', () => {
    const routes: Route[] = Array.from({ length: 100 }, (_, i) => ({
      method: 'GET',
      path: `/g${i}`,
      group: `group${i}`,
    }));
    const meta = definition(routes).Meta;
    expect(Object.keys(meta)).toHaveLength(META_LIMITS.pairs);
    expect(metaProblems(meta)).toEqual([]);
    const listedGroups = Object.keys(meta).filter((key) => key.startsWith('group')).length;
    expect(Number(meta.routes_omitted)).toBe(100 - listedGroups);
  });

  it('turns any group name into a key Consul accepts, never one it reserves or one already used', () => {
    const meta = routeMeta(
      [
        { method: 'GET', path: '/a', group: 'Ingest & Webhooks' },
        { method: 'GET', path: '/b', group: 'consul-internal' },
        { method: 'GET', path: '/c', group: 'version' },
        { method: 'GET', path: '/d', group: 'methods' },
        { method: 'GET', path: '/e', group: 'x'.repeat(300) },
      ],
      { basePath: '/api/v1/events', maxPairs: 64, reserved: ['version', 'capabilities'] },
    );
    expect(meta).toMatchObject({
      ingest_webhooks: 'GET /a',
      'routes_consul-internal': 'GET /b',
      routes_version: 'GET /c',
      routes_methods: 'GET /d',
      methods: 'GET',
    });
    expect(metaProblems(meta)).toEqual([]);
  });

  it('reports what Consul would refuse', () => {
    expect(
      metaProblems({ 'bad.key': 'v', 'consul-x': 'v', ok: 'é'.repeat(300), ['k'.repeat(129)]: 'v' }),
    ).toEqual([
      'key "bad.key" has invalid characters',
      'key consul-x uses the reserved prefix',
      'value of ok is too long',
      `key ${'k'.repeat(129)} is too long`,
    ]);
  });

  it('names each instance by address and port, in characters safe in a URL path', () => {
    expect(serviceId('10.0.0.1', 8230)).not.toBe(serviceId('10.0.0.2', 8230));
    expect(serviceId('10.0.0.1', 8230)).not.toBe(serviceId('10.0.0.1', 8231));
    expect(serviceId('fd00::5', 8230)).toBe('event_service-fd00--5-8230');
    expect(
      buildServiceDefinition({ address: 'fd00::5', port: 80, version: '1', routes: [] }).Check.HTTP,
    ).toBe('http://[fd00::5]:80/health');
  });

  it('reads the routes of an OpenAPI document: methods only, first tag as group', () => {
    expect(
      routesFromOpenApi({
        paths: {
          '/health': { get: { tags: ['health'] }, parameters: [] },
          '/api/v1/events/{id}': { get: { tags: ['events', 'x'] }, delete: {}, summary: 'one event' },
        },
      }),
    ).toEqual([
      { method: 'GET', path: '/health', group: 'health' },
      { method: 'GET', path: '/api/v1/events/{id}', group: 'events' },
      { method: 'DELETE', path: '/api/v1/events/{id}', group: 'other' },
    ]);
    expect(routesFromOpenApi(null)).toEqual([]);
  });

  it('advertises SERVICE_ADDRESS, else a specific HOST, else an external address, else the host name', () => {
    const interfaces = {
      lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }],
      eth0: [
        { address: 'fe80::1', family: 'IPv6', internal: false },
        { address: '10.4.5.6', family: 'IPv4', internal: false },
      ],
    } as unknown as Parameters<typeof advertisedAddress>[1];
    expect(advertisedAddress({ serviceAddress: 'svc.example', host: '0.0.0.0' }, interfaces, 'h')).toBe(
      'svc.example',
    );
    expect(advertisedAddress({ serviceAddress: undefined, host: '127.0.0.1' }, interfaces, 'h')).toBe(
      '127.0.0.1',
    );
    expect(advertisedAddress({ serviceAddress: undefined, host: '0.0.0.0' }, interfaces, 'h')).toBe(
      '10.4.5.6',
    );
    expect(advertisedAddress({ serviceAddress: undefined, host: '::' }, { lo: interfaces.lo }, 'pod-7')).toBe(
      'pod-7',
    );
  });
});

/** An agent in memory: answers from a script, records the calls. */
function scriptedAgent(answers: AgentCallResult[]) {
  const calls: string[] = [];
  const agent: ConsulAgent = {
    async register(def) {
      calls.push(`register ${def.ID}`);
      return answers.shift() ?? { type: 'ok' };
    },
    async deregister(id) {
      calls.push(`deregister ${id}`);
      return { type: 'ok' };
    },
    close: async () => {},
  };
  return { agent, calls };
}

const refused: AgentCallResult = { type: 'error', message: 'ECONNREFUSED' };

describe('the registrar', () => {
  it('retries while the agent is down, then registers; deregisters at shutdown', async () => {
    const { agent, calls } = scriptedAgent([
      refused,
      refused,
      { type: 'error', status: 503, message: 'HTTP 503' },
    ]);
    const registrar = startConsulRegistration({
      agent,
      definition: definition(),
      retry: { baseMs: 1, maxMs: 4 },
    });
    await expect.poll(() => registrar.status()).toBe('registered');
    expect(calls).toEqual(Array(4).fill('register event_service-10.1.2.3-8230'));
    await registrar.deregister(1000);
    expect(calls.at(-1)).toBe('deregister event_service-10.1.2.3-8230');
    expect(registrar.status()).toBe('deregistered');
  });

  it('gives up when the agent refuses the definition itself (400), and has nothing to deregister', async () => {
    const { agent, calls } = scriptedAgent([{ type: 'error', status: 400, message: 'Invalid Service Meta' }]);
    const registrar = startConsulRegistration({
      agent,
      definition: definition(),
      retry: { baseMs: 1, maxMs: 4 },
    });
    await expect.poll(() => registrar.status()).toBe('rejected');
    await registrar.deregister(1000);
    expect(calls).toEqual(['register event_service-10.1.2.3-8230']);
  });

  it('stops retrying at shutdown, and still takes back what may have reached the agent', async () => {
    const { agent, calls } = scriptedAgent(Array(1000).fill(refused));
    const registrar = startConsulRegistration({
      agent,
      definition: definition(),
      retry: { baseMs: 60_000, maxMs: 60_000 },
    });
    await expect.poll(() => calls.length).toBe(1);
    const started = Date.now();
    await registrar.deregister(1000);
    // The wait between attempts was cut short.
    expect(Date.now() - started).toBeLessThan(1000);
    expect(calls).toEqual(['register event_service-10.1.2.3-8230', 'deregister event_service-10.1.2.3-8230']);
  });
});
