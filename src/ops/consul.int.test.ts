/**
 * Consul registration of the real service (a child process) against a local HTTP server that plays
 * the Consul agent: it records the agent API calls and answers as the agent documents (200, empty
 * body). Consul itself cannot be installed here.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { packageVersion } from '../app.js';
import { createTestDatabase, type TestDatabase } from '../test-support/db.js';
import { freePort, ServiceProcess } from '../test-support/service-process.js';
import { waitFor, waitUntil } from '../test-support/wait.js';
import { CAPABILITIES, metaProblems, type ServiceDefinition } from './consul.js';

interface AgentCall {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/** `hang`: the call is never answered (until the server closes). */
type AgentAnswer = { status: number; body?: string } | 'hang';

class FakeConsulAgent {
  readonly calls: AgentCall[] = [];
  private readonly hanging = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(port = 0, answer: (call: AgentCall) => AgentAnswer = () => ({ status: 200 })) {
    const holder: { agent?: FakeConsulAgent } = {};
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://agent');
        const call: AgentCall = {
          method: req.method ?? '',
          path: url.pathname,
          query: url.searchParams,
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          at: Date.now(),
        };
        holder.agent!.calls.push(call);
        const reply = answer(call);
        if (reply === 'hang') {
          holder.agent!.hanging.add(res);
          return;
        }
        // As the agent: 200 with an empty body.
        res.writeHead(reply.status, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(reply.body ?? '');
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    holder.agent = new FakeConsulAgent(server, (server.address() as { port: number }).port);
    return holder.agent;
  }

  registrations(): ServiceDefinition[] {
    return this.calls
      .filter((call) => call.path === '/v1/agent/service/register')
      .map((call) => JSON.parse(call.body) as ServiceDefinition);
  }

  deregistrations(): AgentCall[] {
    return this.calls.filter((call) => call.path.startsWith('/v1/agent/service/deregister/'));
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

describe('Consul registration of the service process', { timeout: 120_000 }, () => {
  let database: TestDatabase;
  const services: ServiceProcess[] = [];
  const agents: FakeConsulAgent[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterEach(async () => {
    await Promise.all(services.splice(0).map((service) => service.stop('SIGKILL')));
    await Promise.all(agents.splice(0).map((agent) => agent.close()));
  });
  afterAll(async () => {
    await database?.drop();
  });

  const start = async (agentPort: number, env: Record<string, string> = {}) => {
    const service = await ServiceProcess.start({
      DATABASE_URL: database.url,
      DB_POOL_SIZE: '4',
      CONSUL_ENABLED: 'true',
      CONSUL_HOST: '127.0.0.1',
      CONSUL_PORT: String(agentPort),
      ...env,
    });
    services.push(service);
    return service;
  };
  const agent = async (port?: number, answer?: (call: AgentCall) => AgentAnswer) => {
    const started = await FakeConsulAgent.start(port, answer);
    agents.push(started);
    return started;
  };

  it("registers with the seed's tags, capabilities, route metadata and a /health check; deregisters on SIGTERM before it stops accepting", async () => {
    const consul = await agent();
    const service = await start(consul.port, {
      CONSUL_TOKEN: 'test-acl-token',
      SHUTDOWN_DELAY_MS: '3000',
      LOG_LEVEL: 'info',
    });
    const [definition] = await waitFor('the registration', () =>
      consul.registrations().length > 0 ? consul.registrations() : undefined,
    );
    const call = consul.calls[0]!;
    expect(call.method).toBe('PUT');
    expect(call.query.get('replace-existing-checks')).toBe('true');
    expect(call.headers['x-consul-token']).toBe('test-acl-token');
    expect(call.headers['content-type']).toBe('application/json');

    const id = `event_service-127.0.0.1-${service.port}`;
    expect(definition).toMatchObject({
      ID: id,
      Name: 'event_service',
      Tags: ['v1', 'user-microservice', 'event-management', 'event-sourcing'],
      Address: '127.0.0.1',
      Port: service.port,
      Check: {
        HTTP: `${service.url}/health`,
        Method: 'GET',
        Interval: '10s',
        Timeout: '5s',
        DeregisterCriticalServiceAfter: '1m',
      },
    });
    const meta = definition!.Meta;
    expect(metaProblems(meta)).toEqual([]);
    expect(meta).toMatchObject({
      version: packageVersion(),
      capabilities: CAPABILITIES.join(','),
      base_path: '/api/v1/events',
      health: 'GET /health|GET /health/ready',
    });
    expect(Number(meta.route_count)).toBeGreaterThanOrEqual(19);
    expect(meta.events).toContain('POST /api/v1/events/create');
    expect(meta.frontend).toContain('POST /api/v1/events/frontend/batch');
    expect(meta.ingest).toContain('POST /webhooks/rudderstack');
    expect(meta.routes_omitted).toBeUndefined();
    // The check answers, as the agent will find it.
    expect((await fetch(definition!.Check.HTTP)).status).toBe(200);
    expect(service.output).toContain('registered with Consul');
    expect(service.output).not.toContain('test-acl-token');

    const signalledAt = Date.now();
    service.signal('SIGTERM');
    const [deregistration] = await waitFor('the deregistration', () =>
      consul.deregistrations().length > 0 ? consul.deregistrations() : undefined,
    );
    // Taken out of Consul first, while it still serves during the delay.
    expect(await refused(service.port)).toBe(false);
    expect(deregistration!.at - signalledAt).toBeLessThan(3000);
    expect(deregistration).toMatchObject({ method: 'PUT', path: `/v1/agent/service/deregister/${id}` });
    expect(deregistration!.headers['x-consul-token']).toBe('test-acl-token');
    const exit = await service.exited();
    expect(exit.code, service.output).toBe(0);
    expect(consul.registrations()).toHaveLength(1);
  });

  it('an agent that is down at start-up: the service starts and serves anyway, and registers once the agent is up', async () => {
    const port = await freePort();
    const service = await start(port);
    expect((await fetch(`${service.url}/health/ready`)).status).toBe(200);
    await waitUntil('a failed attempt logged', () => service.output.includes('Consul registration failed'));
    const consul = await agent(port);
    const [definition] = await waitFor(
      'the registration',
      () => (consul.registrations().length > 0 ? consul.registrations() : undefined),
      30_000,
    );
    expect(definition!.ID).toBe(`event_service-127.0.0.1-${service.port}`);
    service.signal('SIGTERM');
    expect((await service.exited()).code, service.output).toBe(0);
    expect(consul.deregistrations().map((call) => call.path)).toEqual([
      `/v1/agent/service/deregister/${definition!.ID}`,
    ]);
  });

  it('a deregistration the agent never answers does not hold up the shutdown', async () => {
    const consul = await agent(0, (call) => (call.path.includes('deregister') ? 'hang' : { status: 200 }));
    const service = await start(consul.port, { SHUTDOWN_TIMEOUT_MS: '4000' });
    await waitUntil('registered', () => consul.registrations().length > 0);
    const signalledAt = Date.now();
    service.signal('SIGTERM');
    const exit = await service.exited();
    expect(exit.code, service.output).toBe(0);
    expect(consul.deregistrations()).toHaveLength(1);
    // Bounded by its own limit (half the shutdown timeout here), well within SHUTDOWN_TIMEOUT_MS.
    expect(exit.at - signalledAt).toBeGreaterThanOrEqual(1900);
    expect(exit.at - signalledAt).toBeLessThan(4000);
    expect(service.output).toContain('Consul deregistration failed');
  });
});
