/**
 * Graceful shutdown of the real service (a child process) on PostgreSQL: readiness turns 503 while
 * it still serves during SHUTDOWN_DELAY_MS, then new connections are refused, a request in flight
 * gets its normal answer, claimed processing work goes back to the queue, what was committed is on
 * NATS (a private server) when the process exits 0; a shutdown that cannot finish exits 1 within
 * SHUTDOWN_TIMEOUT_MS; a second signal exits at once.
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest, Agent as HttpAgent, type IncomingHttpHeaders } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_STREAM } from '../bus/envelope.js';
import type { Db } from '../store/db.js';
import { createPgDb } from '../store/pg.js';
import { createTestDatabase, type TestDatabase } from '../test-support/db.js';
import { uid } from '../test-support/http.js';
import { PrivateNats } from '../test-support/nats.js';
import { Receiver } from '../test-support/receiver.js';
import { ADMIN_AUTH_HEADER } from '../test-support/app.js';
import { ServiceProcess } from '../test-support/service-process.js';
import { waitUntil } from '../test-support/wait.js';
import { READ_STATUS } from '../store/rows.js';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A POST whose headers reach the server at once (it answers `100 Continue`: the request is in
 * flight) and whose body is sent only when the test says so.
 */
function heldRequest(port: number, path: string, body: unknown) {
  const payload = Buffer.from(JSON.stringify(body));
  const req = httpRequest({
    host: '127.0.0.1',
    port,
    path,
    method: 'POST',
    agent: false,
    headers: {
      ...ADMIN_AUTH_HEADER,
      'content-type': 'application/json',
      'content-length': payload.length,
      expect: '100-continue',
    },
  });
  const continued = new Promise<void>((resolve, reject) => {
    req.once('continue', () => resolve());
    req.once('error', reject);
  });
  const answer = new Promise<Answer>((resolve, reject) => {
    req.once('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    req.once('error', reject);
  });
  continued.catch(() => undefined);
  answer.catch(() => undefined);
  req.flushHeaders();
  return {
    continued,
    send: () => {
      req.end(payload);
      return answer;
    },
    abort: () => req.destroy(),
  };
}

/** True when a new TCP connection to the port is refused. */
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

/** The event ids of every `event.stored` message in the lifecycle stream. */
async function storedIds(url: string): Promise<Set<string>> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(EVENT_STREAM, { subjects_filter: 'event.stored' });
    const count = info.state.subjects?.['event.stored'] ?? 0;
    const durable = `read_${randomUUID().slice(0, 8)}`;
    await jsm.consumers.add(EVENT_STREAM, {
      durable_name: durable,
      filter_subject: 'event.stored',
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
    });
    try {
      const consumer = await jetstream(nc).consumers.get(EVENT_STREAM, durable);
      const ids = new Set<string>();
      let read = 0;
      while (read < count) {
        let fetched = 0;
        for await (const m of await consumer.fetch({ max_messages: 1000, expires: 2000 })) {
          fetched++;
          ids.add(
            (JSON.parse(new TextDecoder().decode(m.data)) as { data: { event_id: string } }).data.event_id,
          );
        }
        if (fetched === 0) break;
        read += fetched;
      }
      return ids;
    } finally {
      await jsm.consumers.delete(EVENT_STREAM, durable);
    }
  } finally {
    await nc.close();
  }
}

async function api(service: ServiceProcess, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${service.url}${path}`, {
    method,
    headers: {
      ...ADMIN_AUTH_HEADER,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function createBatch(service: ServiceProcess, events: Record<string, unknown>[]): Promise<string[]> {
  const res = await api(service, 'POST', '/api/v1/events/batch', events);
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { event_id: string }[]).map((e) => e.event_id);
}

// Real processes start slowly on a busy machine: generous limits.
describe('graceful shutdown of the service process (PostgreSQL)', { timeout: 120_000 }, () => {
  let database: TestDatabase;
  let db: Db;
  let nats: PrivateNats;
  let receiver: Receiver;
  const services: ServiceProcess[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    db = createPgDb({ connectionString: database.url, poolSize: 2, statementTimeoutMs: 30_000 });
    nats = await PrivateNats.start();
    // A slow webhook: every call is held until the receiver closes.
    receiver = await Receiver.start(() => ({ status: 200, delayMs: 120_000 }));
  });
  afterEach(async () => {
    await Promise.all(services.splice(0).map((service) => service.stop('SIGKILL')));
  });
  afterAll(async () => {
    await receiver?.close();
    await db?.close();
    await database?.drop();
    await nats?.destroy();
  });

  const start = async (env: Record<string, string>) => {
    const service = await ServiceProcess.start({ DATABASE_URL: database.url, DB_POOL_SIZE: '6', ...env });
    services.push(service);
    return service;
  };

  it('SIGTERM: not ready but serving during the delay, then refuses connections, answers what is in flight, releases its claims, publishes what is committed, exits 0', async () => {
    const tag = uid('shutdown');
    const delayMs = 3000;
    const timeoutMs = 20_000;
    const service = await start({
      NATS_URL: nats.url,
      LOG_LEVEL: 'info',
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
      PROCESSING_POLL_MS: '20',
      PROCESSING_BATCH_SIZE: '10',
      PROCESSING_CONCURRENCY: '4',
      PROCESSING_PARALLEL_BATCHES: '1',
      PROCESSING_LEASE_MS: '600000',
      PROCESSING_TIMEOUT_MS: '300000',
      SHUTDOWN_DELAY_MS: String(delayMs),
      SHUTDOWN_TIMEOUT_MS: String(timeoutMs),
    });
    const res = await api(service, 'POST', '/api/v1/events/processors', {
      processor_name: tag,
      processor_type: 'webhook',
      filters: { event_type: tag },
      config: { url: receiver.url(`/${tag}`) },
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const processed = await createBatch(
      service,
      Array.from({ length: 30 }, (_, i) => ({ event_type: tag, data: { i } })),
    );
    // Claims in flight: the webhook holds every call.
    await waitUntil(
      'calls in flight',
      () => receiver.requests.filter((r) => r.path === `/${tag}`).length >= 4,
    );
    const claimed = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM event.events_current AS events WHERE event_type = $1 AND ${READ_STATUS} = 'processing'`,
      [tag],
    );
    expect(claimed.rows[0]!.n).toBeGreaterThan(0);

    // An idle keep-alive connection, and a request whose body is still to come.
    const keepAlive = new HttpAgent({ keepAlive: true });
    const idleSocket = await new Promise<Socket>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: service.port, path: '/health', agent: keepAlive });
      req.once('error', reject);
      req.once('response', (r) => {
        const socket = r.socket;
        r.resume();
        r.on('end', () => resolve(socket));
      });
      req.end();
    });
    const idleClosed = new Promise<void>((resolve) => idleSocket.once('close', () => resolve()));
    const held = Array.from({ length: 3 }, (_, n) =>
      heldRequest(
        service.port,
        '/api/v1/events/batch',
        Array.from({ length: 500 }, (_, i) => ({ event_type: `${tag}.late`, data: { n, i } })),
      ),
    );
    await Promise.all(held.map((request) => request.continued));
    // Committed right before the signal.
    const before = await createBatch(
      service,
      Array.from({ length: 1000 }, (_, i) => ({ event_type: `${tag}.before`, data: { i } })),
    );

    const signalledAt = Date.now();
    service.signal('SIGTERM');
    // During the delay: not ready, still serving.
    await waitUntil('readiness 503', async () => (await api(service, 'GET', '/health/ready')).status === 503);
    const ready = await api(service, 'GET', '/health/ready');
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { checks: Record<string, unknown> }).checks.shutdown).toEqual({
      status: 'down',
      error: 'shutting down',
    });
    const during = await api(service, 'POST', '/api/v1/events/create', { event_type: `${tag}.during` });
    expect(during.status).toBe(201);
    expect(during.headers.get('connection')).toBe('close');
    const duringId = ((await during.json()) as { event_id: string }).event_id;
    expect(Date.now() - signalledAt).toBeLessThan(delayMs);

    // After the delay: no new connections; the idle keep-alive connection is closed.
    await waitUntil('new connections refused', () => refused(service.port), 10_000);
    expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(delayMs);
    await idleClosed;
    keepAlive.destroy();

    // The requests in flight get their normal answer, and their connections are closed after it.
    const answers = await Promise.all(held.map((request) => request.send()));
    const lateIds: string[] = [];
    for (const answer of answers) {
      expect(answer.status, answer.body).toBe(201);
      expect(answer.headers.connection).toBe('close');
      lateIds.push(...(JSON.parse(answer.body) as { event_id: string }[]).map((e) => e.event_id));
    }
    expect(lateIds).toHaveLength(1500);

    const exit = await service.exited();
    expect(exit.code, service.output).toBe(0);
    expect(exit.at - signalledAt).toBeLessThan(timeoutMs);
    expect(service.output).toContain('"msg":"stopped"');

    // Claimed work went back to the queue at once, not counted as a failure.
    const states = await db.query<{ status: string; retry_count: number; claimed: boolean }>(
      `SELECT e.status, e.retry_count, COALESCE(q.claim_token IS NOT NULL OR q.lease_until IS NOT NULL, false) AS claimed
       FROM event.events_current AS e LEFT JOIN event.processing_queue AS q ON q.position = e.position
       WHERE e.event_type = $1`,
      [tag],
    );
    expect(states.rows).toHaveLength(30);
    for (const row of states.rows) expect(row).toEqual({ status: 'pending', retry_count: 0, claimed: false });
    const results = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM event.processing_results WHERE processor_name = $1',
      [tag],
    );
    expect(results.rows[0]!.n).toBe(0);

    // Everything committed, to the last request, is on NATS.
    const published = await storedIds(nats.url);
    const missing = [...processed, ...before, ...lateIds, duringId].filter((id) => !published.has(id));
    expect(missing).toEqual([]);
  });

  it('after a NATS outage, the backlog of committed events is published before the process exits', async () => {
    const tag = uid('backlog');
    const service = await start({ NATS_URL: nats.url, SHUTDOWN_TIMEOUT_MS: '60000' });
    await nats.stop();
    const ids: string[] = [];
    for (let round = 0; round < 5; round++) {
      const batches = await Promise.all(
        Array.from({ length: 4 }, (_, n) =>
          createBatch(
            service,
            Array.from({ length: 1000 }, (_, i) => ({ event_type: tag, data: { round, n, i } })),
          ),
        ),
      );
      for (const batch of batches) ids.push(...batch);
    }
    await nats.start();
    await waitUntil('the bus reconnected', async () => {
      const res = await api(service, 'GET', '/api/v1/events/frontend/health');
      return ((await res.json()) as { nats_connected: boolean }).nats_connected;
    });
    // The relay has 20,000 events to publish when the signal comes.
    service.signal('SIGTERM');
    const exit = await service.exited();
    expect(exit.code, service.output).toBe(0);
    const published = await storedIds(nats.url);
    expect(ids.filter((id) => !published.has(id))).toEqual([]);
  });

  it('SIGTERM during concurrent batch writes: every acknowledged batch is stored whole, no batch in part', async () => {
    const tag = uid('writers');
    const service = await start({ SHUTDOWN_DELAY_MS: '300', SHUTDOWN_TIMEOUT_MS: '20000' });
    const size = 200;
    const acknowledged: string[] = [];
    const attempted: string[] = [];
    let stop = false;
    const writer = async (w: number) => {
      for (let n = 0; !stop; n++) {
        const batch = `${tag}-${w}-${n}`;
        attempted.push(batch);
        const res = await api(
          service,
          'POST',
          '/api/v1/events/batch',
          Array.from({ length: size }, (_, i) => ({ event_type: tag, correlation_id: batch, data: { i } })),
        ).catch(() => null);
        if (res === null) return; // refused: the service stopped accepting
        if (res.status === 201) acknowledged.push(batch);
        else if (res.status !== 503) throw new Error(`batch ${batch}: ${res.status} ${await res.text()}`);
      }
    };
    const writers = Array.from({ length: 8 }, (_, w) => writer(w));
    await waitUntil('batches acknowledged', () => acknowledged.length >= 16);
    service.signal('SIGTERM');
    const exit = await service.exited();
    stop = true;
    await Promise.all(writers);
    expect(exit.code, service.output).toBe(0);

    const stored = await db.query<{ batch: string; n: number }>(
      `SELECT correlation_id AS batch, count(*)::int AS n FROM event.events WHERE event_type = $1
       GROUP BY correlation_id`,
      [tag],
    );
    const counts = new Map(stored.rows.map((row) => [row.batch, row.n]));
    // Whole or not at all, and nothing the service did not get.
    for (const [batch, n] of counts) {
      expect(n, batch).toBe(size);
      expect(attempted).toContain(batch);
    }
    // Every acknowledged batch is there.
    for (const batch of acknowledged) expect(counts.get(batch), batch).toBe(size);
    expect(acknowledged.length).toBeGreaterThanOrEqual(16);
  });

  it('a shutdown that cannot finish exits 1 within SHUTDOWN_TIMEOUT_MS, naming what was pending', async () => {
    const timeoutMs = 2000;
    const service = await start({ SHUTDOWN_TIMEOUT_MS: String(timeoutMs) });
    // A request whose body never comes: the HTTP close waits for it.
    const held = heldRequest(service.port, '/api/v1/events/create', { event_type: 'never.sent' });
    await held.continued;
    const signalledAt = Date.now();
    service.signal('SIGTERM');
    const exit = await service.exited();
    held.abort();
    expect(exit.code, service.output).toBe(1);
    expect(exit.at - signalledAt).toBeGreaterThanOrEqual(timeoutMs - 50);
    expect(exit.at - signalledAt).toBeLessThan(timeoutMs + 1500);
    const report = service.output
      .split('\n')
      .filter((line) => line.includes('shutdown timed out'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(report).toHaveLength(1);
    expect(report[0]).toMatchObject({
      step: 'http',
      pending: { requests_in_flight: 1, open_connections: 1 },
      not_run: ['appends', 'workers', 'consul', 'bus', 'db', 'traces'],
    });
  });

  it('a second signal while stopping exits at once', async () => {
    const service = await start({ SHUTDOWN_TIMEOUT_MS: '60000' });
    const held = heldRequest(service.port, '/api/v1/events/create', { event_type: 'never.sent' });
    await held.continued;
    service.signal('SIGTERM');
    await waitUntil('new connections refused', () => refused(service.port), 10_000);
    const secondAt = Date.now();
    service.signal('SIGINT');
    const exit = await service.exited();
    held.abort();
    expect(exit.code, service.output).toBe(130);
    expect(exit.at - secondAt).toBeLessThan(1000);
    expect(service.output).toContain('second signal while stopping: exiting now');
  });
});
