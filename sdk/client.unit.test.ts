/**
 * The client against a real local HTTP server (real sockets, nothing of fetch or undici mocked)
 * whose answers each test scripts: retries, idempotency keys, error mapping, timeouts, close.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ClientClosedError,
  EventServiceClient,
  EventServiceError,
  NetworkError,
  TimeoutError,
  isEventServiceError,
  type EventServiceClientOptions,
} from './index.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  json: unknown;
}

/** What the server does with one request: answer, or drop the connection without answering. */
type Action =
  | { status: number; body?: unknown; headers?: Record<string, string>; delayMs?: number; raw?: string }
  | 'drop';

class ScriptedServer {
  readonly seen: Seen[] = [];
  script: (request: Seen, index: number) => Action = () => ({ status: 200, body: {} });
  private constructor(readonly server: Server) {}

  static async start(port = 0): Promise<ScriptedServer> {
    const holder: { s?: ScriptedServer } = {};
    const server = createServer((req, res) => void holder.s!.handle(req, res));
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    holder.s = new ScriptedServer(server);
    return holder.s;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const seen: Seen = {
      method: req.method!,
      url: req.url!,
      headers: req.headers,
      body,
      json: body === '' ? undefined : JSON.parse(body),
    };
    this.seen.push(seen);
    const action = this.script(seen, this.seen.length - 1);
    if (action === 'drop') {
      req.socket.destroy();
      return;
    }
    if (action.delayMs) await new Promise((resolve) => setTimeout(resolve, action.delayMs));
    if (res.destroyed) return;
    res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers });
    res.end(action.raw ?? (action.body === undefined ? '' : JSON.stringify(action.body)));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const FAST_RETRY = { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 };
const EVENT = { event_id: 'e-1', event_type: 'user.created' };

let server: ScriptedServer;
let client: EventServiceClient;
const opened: EventServiceClient[] = [];
const open = (options: EventServiceClientOptions = {}) => {
  const created = new EventServiceClient({ baseUrl: server.url, retry: FAST_RETRY, ...options });
  opened.push(created);
  return created;
};

beforeEach(async () => {
  server = await ScriptedServer.start();
  client = open({ apiKey: 'k-1' });
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
  await server.close();
});

describe('retries', () => {
  it('retries 503 with backoff until an answer comes', async () => {
    server.script = (_r, i) =>
      i < 2
        ? { status: 503, body: { detail: 'down', code: 'store_unavailable' } }
        : { status: 200, body: EVENT };
    await expect(client.getEvent('e-1')).resolves.toEqual(EVENT);
    expect(server.seen).toHaveLength(3);
  });

  it('gives up after maxAttempts with the last error, typed', async () => {
    server.script = () => ({
      status: 503,
      body: { detail: 'The store is unavailable', code: 'store_unavailable' },
      headers: { 'retry-after': '0' },
    });
    const error = await client.getEvent('e-1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventServiceError);
    expect(error).toMatchObject({
      status: 503,
      code: 'store_unavailable',
      detail: 'The store is unavailable',
      retryAfter: 0,
      attempts: 3,
      method: 'GET',
      path: '/api/v1/events/e-1',
    });
    expect(server.seen).toHaveLength(3);
  });

  it('honours Retry-After of a 429', async () => {
    server.script = (_r, i) =>
      i === 0
        ? {
            status: 429,
            body: { detail: 'slow down', code: 'rate_limited' },
            headers: { 'retry-after': '1' },
          }
        : { status: 200, body: { status: 'healthy' } };
    const started = Date.now();
    await client.health();
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(server.seen).toHaveLength(2);
  });

  it('fails at once when Retry-After is beyond the deadline', async () => {
    client = open({ deadlineMs: 2_000 });
    server.script = () => ({
      status: 429,
      body: { detail: 'slow down', code: 'rate_limited' },
      headers: { 'retry-after': '30' },
    });
    const error = await client.health().catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 429, code: 'rate_limited', retryAfter: 30, attempts: 1 });
  });

  it('never retries other 4xx or a 500', async () => {
    for (const status of [400, 401, 403, 404, 409, 422, 500]) {
      server.seen.length = 0;
      server.script = () => ({ status, body: { detail: 'no', code: `c${status}` } });
      await expect(client.getEvent('e-1')).rejects.toMatchObject({ status, code: `c${status}` });
      expect(server.seen).toHaveLength(1);
    }
  });

  it('retries an idempotent request after the connection dropped', async () => {
    server.script = (_r, i) => (i === 0 ? 'drop' : { status: 200, body: EVENT });
    await expect(client.getEvent('e-1')).resolves.toEqual(EVENT);
    expect(server.seen).toHaveLength(2);
  });

  it('does not retry a non-idempotent request the service may have acted on', async () => {
    server.script = () => 'drop';
    const error = await client
      .createProcessor({ processor_name: 'p', processor_type: 'webhook' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetworkError);
    expect(error).toMatchObject({ requestSent: true, attempts: 1, method: 'POST' });
    expect(server.seen).toHaveLength(1);
  });

  it('retries a non-idempotent request that never reached the service (connection refused)', async () => {
    const port = (server.server.address() as AddressInfo).port;
    client = open({ retry: { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 200 } });
    await server.close();
    const call = client.createProcessor({ processor_name: 'p', processor_type: 'webhook' });
    await new Promise((resolve) => setTimeout(resolve, 30));
    server = await ScriptedServer.start(port);
    server.script = () => ({ status: 201, body: { processor_id: 'p-1' } });
    await expect(call).resolves.toEqual({ processor_id: 'p-1' });
    expect(server.seen).toHaveLength(1);
  });

  it('reports a refused connection as a NetworkError that was not sent', async () => {
    client = open({ retry: false });
    await server.close();
    await expect(client.health()).rejects.toMatchObject({
      name: 'NetworkError',
      code: 'ECONNREFUSED',
      requestSent: false,
    });
  });

  it('retry: false makes one attempt', async () => {
    client = open({ retry: false });
    server.script = () => ({ status: 503, body: { detail: 'down', code: 'store_unavailable' } });
    await expect(client.health()).rejects.toMatchObject({ status: 503, attempts: 1 });
    expect(server.seen).toHaveLength(1);
  });
});

describe('idempotency keys', () => {
  it('adds one to a create without a key, and sends the same one on the retry', async () => {
    server.script = (_r, i) => (i === 0 ? 'drop' : { status: 201, body: EVENT });
    await expect(client.createEvent({ event_type: 'user.created', data: { a: 1 } })).resolves.toEqual(EVENT);
    expect(server.seen).toHaveLength(2);
    const [first, second] = server.seen.map((s) => s.json as { idempotency_key: string; data: unknown });
    expect(first!.idempotency_key).toMatch(/^[0-9a-f-]{36}$/);
    expect(second!.idempotency_key).toBe(first!.idempotency_key);
    expect(first!.data).toEqual({ a: 1 });
  });

  it('keeps the caller’s idempotency_key or event_id', async () => {
    server.script = () => ({ status: 201, body: EVENT });
    await client.createEvent({ event_type: 't', idempotency_key: 'mine' });
    await client.createEvent({ event_type: 't', event_id: 'e-9' });
    expect(server.seen.map((s) => s.json)).toEqual([
      { event_type: 't', idempotency_key: 'mine' },
      { event_type: 't', event_id: 'e-9' },
    ]);
  });

  it('gives every batch item its own key, for atomic and partial batches', async () => {
    server.script = () => ({ status: 201, body: [] });
    await client.createBatch([
      { event_type: 'a' },
      { event_type: 'b', idempotency_key: 'k' },
      { event_type: 'c' },
    ]);
    server.script = () => ({ status: 207, body: { results: [], succeeded: 0, failed: 0 } });
    await client.createBatchPartial([{ event_type: 'a' }]);
    const atomic = server.seen[0]!.json as { idempotency_key: string }[];
    expect(atomic[1]!.idempotency_key).toBe('k');
    expect(new Set(atomic.map((e) => e.idempotency_key)).size).toBe(3);
    expect(server.seen[1]!.url).toBe('/api/v1/events/batch?partial=true');
    expect((server.seen[1]!.json as { idempotency_key?: string }[])[0]!.idempotency_key).toBeDefined();
  });

  it('gives frontend events an event_id and a timestamp, the same on the retry', async () => {
    server.script = (_r, i) => (i === 0 ? 'drop' : { status: 200, body: { status: 'accepted' } });
    await client.sendFrontendEvent({ event_type: 'button_click', category: 'click' });
    const [first, second] = server.seen.map((s) => s.json as { event_id: string; timestamp: string });
    expect(first!.event_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number.isNaN(Date.parse(first!.timestamp))).toBe(false);
    expect(second).toEqual(first);
  });

  it('with autoIdempotency false, adds nothing and does not retry a create after a drop', async () => {
    client = open({ autoIdempotency: false });
    server.script = () => 'drop';
    await expect(client.createEvent({ event_type: 't' })).rejects.toBeInstanceOf(NetworkError);
    expect(server.seen).toHaveLength(1);
    expect(server.seen[0]!.json).toEqual({ event_type: 't' });
  });
});

describe('errors', () => {
  it('maps the service’s error body: status, code, detail, field problems, extra fields, request id', async () => {
    server.script = () => ({
      status: 409,
      body: { detail: 'Version conflict', code: 'version_conflict', actual_version: 3 },
      headers: { 'x-request-id': 'req-7' },
    });
    const error = (await client
      .createEvent({ event_type: 't', stream_id: 'a:b' })
      .catch((e: unknown) => e)) as EventServiceError;
    expect(isEventServiceError(error, 'version_conflict')).toBe(true);
    expect(error.body.actual_version).toBe(3);
    expect(error.requestId).toBe('req-7');
    expect(error.errors).toEqual([]);
    expect(error.message).toContain('409 version_conflict');

    server.script = () => ({
      status: 422,
      body: {
        detail: 'Invalid',
        code: 'validation_failed',
        errors: [{ path: 'body.event_type', message: 'is required' }],
      },
    });
    await expect(client.createEvent({ event_type: '' })).rejects.toMatchObject({
      status: 422,
      code: 'validation_failed',
      errors: [{ path: 'body.event_type', message: 'is required' }],
    });
  });

  it('maps an answer that is not the service’s JSON (a proxy’s page)', async () => {
    server.script = () => ({
      status: 502,
      raw: '<html>Bad gateway</html>',
      headers: { 'content-type': 'text/html' },
    });
    const error = (await client.health().catch((e: unknown) => e)) as EventServiceError;
    expect(error).toBeInstanceOf(EventServiceError);
    expect(error).toMatchObject({ status: 502, code: 'http_502', detail: '<html>Bad gateway</html>' });
    expect(error.requestId).toMatch(/^[0-9a-f-]{36}$/); // the one the client sent
  });

  it('answers a not-ready service as a value, without retrying', async () => {
    server.script = () => ({ status: 503, body: { status: 'not_ready', checks: {}, timestamp: 'now' } });
    await expect(client.ready()).resolves.toMatchObject({ status: 'not_ready' });
    expect(server.seen).toHaveLength(1);
  });
});

describe('timeouts and aborts', () => {
  it('times out an attempt and retries it when idempotent', async () => {
    client = open({ timeoutMs: 150 });
    server.script = (_r, i) =>
      i === 0 ? { status: 200, body: EVENT, delayMs: 1_000 } : { status: 200, body: EVENT };
    await expect(client.getEvent('e-1')).resolves.toEqual(EVENT);
    expect(server.seen).toHaveLength(2);
  });

  it('throws TimeoutError when no attempt answers in time', async () => {
    client = open({ timeoutMs: 100, retry: false });
    server.script = () => ({ status: 200, body: EVENT, delayMs: 1_000 });
    const error = await client.getEvent('e-1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toBeInstanceOf(NetworkError);
    expect(error).toMatchObject({ code: 'TIMEOUT', attempts: 1 });
  });

  it('keeps the whole call within its deadline', async () => {
    client = open({ timeoutMs: 5_000, deadlineMs: 300, retry: { maxAttempts: 10, baseDelayMs: 10 } });
    server.script = () => ({ status: 200, body: EVENT, delayMs: 2_000 });
    const started = Date.now();
    await expect(client.getEvent('e-1')).rejects.toBeInstanceOf(TimeoutError);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('rejects with the caller’s abort reason and does not retry', async () => {
    server.script = () => ({ status: 200, body: EVENT, delayMs: 1_000 });
    const controller = new AbortController();
    const reason = new Error('user gave up');
    setTimeout(() => controller.abort(reason), 50);
    await expect(client.getEvent('e-1', { signal: controller.signal })).rejects.toBe(reason);
    expect(server.seen).toHaveLength(1);
  });
});

describe('close', () => {
  it('refuses calls after close, and close is idempotent', async () => {
    await client.close();
    await client.close();
    await expect(client.health()).rejects.toBeInstanceOf(ClientClosedError);
    expect(server.seen).toHaveLength(0);
  });

  it('lets a request in flight finish', async () => {
    server.script = () => ({ status: 200, body: EVENT, delayMs: 150 });
    const call = client.getEvent('e-1');
    await new Promise((resolve) => setTimeout(resolve, 50));
    await Promise.all([client.close(), expect(call).resolves.toEqual(EVENT)]);
  });

  it('ends a call that waits to retry', async () => {
    client = open({ retry: { maxAttempts: 3, baseDelayMs: 10_000, maxDelayMs: 10_000 } });
    server.script = () => ({ status: 503, body: { detail: 'down', code: 'store_unavailable' } });
    const call = client.health().catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await client.close();
    expect(await call).toBeInstanceOf(ClientClosedError);
  });

  it('closes at the end of an `await using` block', async () => {
    server.script = () => ({ status: 200, body: { status: 'healthy' } });
    let outer: EventServiceClient;
    {
      await using scoped = open();
      outer = scoped;
      await scoped.health();
    }
    await expect(outer.health()).rejects.toBeInstanceOf(ClientClosedError);
  });
});

describe('requests', () => {
  it('sends the API key, JSON, and encoded paths and query strings', async () => {
    server.script = () => ({ status: 200, body: {} });
    await client.readStream('order:o 42', { from_version: 2, direction: 'backward' });
    await client.toggleProcessor('p/1', false);
    await client.enableSubscription('s-1');
    await client.getStatistics({ user_id: 'u-1' });
    expect(server.seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'GET /api/v1/events/stream/order%3Ao%2042?from_version=2&direction=backward',
      'PUT /api/v1/events/processors/p%2F1/toggle?enabled=false',
      'POST /api/v1/events/subscriptions/s-1/enable',
      'GET /api/v1/events/statistics?user_id=u-1',
    ]);
    const headers = server.seen[0]!.headers;
    expect(headers.authorization).toBe('Bearer k-1');
    expect(headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(server.seen[2]!.headers['content-type']).toBeUndefined(); // no body, no JSON content type
  });

  it('pages through a query with the cursor', async () => {
    server.script = (request) => {
      const { cursor } = request.json as { cursor?: string };
      const page = cursor === undefined ? 0 : Number(cursor);
      return {
        status: 200,
        body: {
          events: [{ event_id: `e-${page * 2}` }, { event_id: `e-${page * 2 + 1}` }],
          total: null,
          limit: 2,
          offset: 0,
          has_more: page < 2,
          next_cursor: page < 2 ? String(page + 1) : null,
        },
      };
    };
    const ids: string[] = [];
    for await (const event of client.queryAll({ user_id: 'u-1', pageSize: 2 })) ids.push(event.event_id);
    expect(ids).toEqual(['e-0', 'e-1', 'e-2', 'e-3', 'e-4', 'e-5']);
    expect(server.seen.map((s) => s.json)).toEqual([
      { user_id: 'u-1', limit: 2, include_total: false },
      { user_id: 'u-1', limit: 2, include_total: false, cursor: '1' },
      { user_id: 'u-1', limit: 2, include_total: false, cursor: '2' },
    ]);
  });

  it('takes its base URL from EVENT_SERVICE_URL, else localhost:8230', () => {
    const saved = process.env.EVENT_SERVICE_URL;
    try {
      process.env.EVENT_SERVICE_URL = 'http://events.internal:9000/';
      expect(new EventServiceClient().baseUrl).toBe('http://events.internal:9000');
      delete process.env.EVENT_SERVICE_URL;
      expect(new EventServiceClient().baseUrl).toBe('http://localhost:8230');
      expect(new EventServiceClient('http://x:1').baseUrl).toBe('http://x:1');
    } finally {
      if (saved === undefined) delete process.env.EVENT_SERVICE_URL;
      else process.env.EVENT_SERVICE_URL = saved;
    }
  });

  it('works under a path prefix (behind a gateway)', async () => {
    client = open({ baseUrl: `${server.url}/events-service/` });
    server.script = () => ({ status: 200, body: {} });
    await client.health();
    expect(server.seen[0]!.url).toBe('/events-service/health');
  });
});
