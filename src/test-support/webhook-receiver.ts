/**
 * A real local HTTP server standing in for a webhook endpoint: records every request (headers,
 * raw body, arrival time, how many were open at once) and answers as the test says (status,
 * headers, delay, or never).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface ReceivedRequest {
  /** 1 for the first request this receiver got. */
  n: number;
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body; '' until it has arrived whole (or if the sender gave up on it). */
  body: string;
  /** When its headers arrived (ms since the epoch): it counts from then, even if abandoned. */
  receivedAt: number;
  /** Requests open (not answered, not abandoned) when it arrived, itself included. */
  concurrent: number;
}

export type Reply =
  | { status: number; headers?: Record<string, string>; body?: string; delayMs?: number }
  /** Never answer (until the sender gives up or the receiver closes). */
  | 'hang';

export type Responder = (request: ReceivedRequest) => Reply | Promise<Reply>;

export interface WebhookReceiver {
  url: string;
  /** In order of arrival. */
  requests: ReceivedRequest[];
  /** Most requests ever open at once. */
  maxConcurrent(): number;
  /** How to answer from now on (default: 200). */
  respond(responder: Responder): void;
  /** Verifies a request as a receiver would (standardwebhooks); returns the parsed body or throws. */
  verify(request: ReceivedRequest, secret: string): unknown;
  close(): Promise<void>;
}

export async function startReceiver(
  responder: Responder = () => ({ status: 200 }),
): Promise<WebhookReceiver> {
  let current = responder;
  const requests: ReceivedRequest[] = [];
  let open = 0;
  let peak = 0;
  const server: Server = createServer((req, res) => {
    open++;
    peak = Math.max(peak, open);
    let closed = false;
    const close = () => {
      if (!closed) open--;
      closed = true;
    };
    res.on('close', close);
    const received: ReceivedRequest = {
      n: requests.length + 1,
      path: req.url ?? '/',
      headers: req.headers,
      body: '',
      receivedAt: Date.now(),
      concurrent: open,
    };
    requests.push(received);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.body = Buffer.concat(chunks).toString('utf8');
      void Promise.resolve(current(received)).then(async (reply) => {
        if (reply === 'hang') return;
        if (reply.delayMs) await new Promise((resolve) => setTimeout(resolve, reply.delayMs));
        if (res.destroyed) return;
        res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers });
        res.end(reply.body ?? '');
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    maxConcurrent: () => peak,
    respond(next) {
      current = next;
    },
    verify(request, secret) {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(request.headers)) {
        if (typeof value === 'string') headers[name] = value;
      }
      return new Webhook(secret).verify(request.body, headers);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface IsolatedReceiver {
  url: string;
  /** Arrival times (ms since the epoch, the receiver's clock) of every request, as reported so far. */
  arrivals: number[];
  /** Waits until every request that arrived has been reported. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

const ISOLATED_RECEIVER = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const server = http.createServer((req, res) => {
  parentPort.postMessage({ type: 'request', at: Date.now() });
  req.resume();
  req.on('end', () => {
    setTimeout(() => {
      if (!res.destroyed) res.writeHead(workerData.status).end();
    }, workerData.delayMs);
  });
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage({ type: 'listening', port: server.address().port }));
parentPort.on('message', (message) => {
  if (message === 'ping') parentPort.postMessage({ type: 'pong' });
  if (message === 'close') {
    server.closeAllConnections();
    server.close(() => parentPort.postMessage({ type: 'closed' }));
  }
});
`;

/**
 * A receiver on a thread of its own: its clock and its event loop are not held up by the service
 * under test (the embedded store runs on the main thread), so an arrival time is when the request
 * reached it, not when the main thread got round to it.
 */
export async function startIsolatedReceiver(reply: {
  status: number;
  delayMs: number;
}): Promise<IsolatedReceiver> {
  const { Worker } = await import('node:worker_threads');
  const worker = new Worker(ISOLATED_RECEIVER, { eval: true, workerData: reply });
  const arrivals: number[] = [];
  const waiting: Record<string, (() => void)[]> = {};
  let port = 0;
  worker.on('message', (message: { type: string; at?: number; port?: number }) => {
    if (message.type === 'request') arrivals.push(message.at!);
    if (message.type === 'listening') port = message.port!;
    for (const resolve of waiting[message.type]?.splice(0) ?? []) resolve();
  });
  const next = (type: string) => new Promise<void>((resolve) => (waiting[type] ??= []).push(resolve));
  await next('listening');
  return {
    url: `http://127.0.0.1:${port}/hook`,
    arrivals,
    async settle() {
      // Messages from the thread arrive in order: once the pong is here, so are the requests before it.
      const pong = next('pong');
      worker.postMessage('ping');
      await pong;
    },
    async close() {
      const closed = next('closed');
      worker.postMessage('close');
      await closed;
      await worker.terminate();
    },
  };
}
