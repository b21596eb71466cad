/**
 * A real local HTTP server that records every request, for tests of outbound calls (webhook
 * processors). Its answer is decided per request by `respond` (status and an optional delay).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  /** When the request arrived (ms since epoch). */
  at: number;
}

export interface ReceiverAnswer {
  status: number;
  /** Waits this long before answering, ms. */
  delayMs?: number;
  headers?: Record<string, string>;
}

export type Respond = (request: ReceivedRequest) => ReceiverAnswer | Promise<ReceiverAnswer>;

export class Receiver {
  readonly requests: ReceivedRequest[] = [];
  private readonly pendingTimers = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    public respond: Respond,
  ) {}

  static async start(respond: Respond = () => ({ status: 200 })): Promise<Receiver> {
    const holder: { receiver?: Receiver } = {};
    const server = createServer((req, res) => void holder.receiver!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    holder.receiver = new Receiver(server, (server.address() as { port: number }).port, respond);
    return holder.receiver;
  }

  url(path = '/hook'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Requests to `path`, parsed as JSON. */
  bodies<T = Record<string, unknown>>(path?: string): T[] {
    return this.requests
      .filter((r) => path === undefined || r.path === path)
      .map((r) => JSON.parse(r.body) as T);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const request: ReceivedRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
      at: Date.now(),
    };
    this.requests.push(request);
    let answer: ReceiverAnswer;
    try {
      answer = await this.respond(request);
    } catch {
      answer = { status: 500 };
    }
    if (answer.delayMs) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.pendingTimers.delete(timer);
          resolve();
        }, answer.delayMs);
        this.pendingTimers.add(timer);
      });
    }
    if (res.destroyed) return;
    res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
    res.end('ok');
  }

  async close(): Promise<void> {
    for (const timer of this.pendingTimers) clearTimeout(timer);
    this.pendingTimers.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
