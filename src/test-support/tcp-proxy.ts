/**
 * A TCP proxy for outage tests: sits between the app and a server, and can drop every connection
 * and refuse new ones (`pause`), then accept again on the same port (`resume`).
 */
import net from 'node:net';

export class TcpProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private listenPort = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** The port the proxy listens on (the same across pause and resume). */
  get port(): number {
    return this.listenPort;
  }

  get paused(): boolean {
    return this.server === null;
  }

  /** Client-side connections currently open through the proxy. */
  get connections(): number {
    return this.sockets.size / 2;
  }

  /** Starts listening on 127.0.0.1 and a free port. */
  async start(): Promise<void> {
    await this.listen(0);
  }

  /** Closes the listener and destroys every connection through the proxy. */
  async pause(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** Listens again on the same port. */
  async resume(): Promise<void> {
    if (this.server) return;
    await this.listen(this.listenPort);
  }

  async close(): Promise<void> {
    await this.pause();
  }

  private listen(port: number): Promise<void> {
    const server = net.createServer((client) => this.forward(client));
    return new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        this.server = server;
        this.listenPort = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  private forward(client: net.Socket): void {
    const upstream = net.connect(this.targetPort, this.targetHost);
    const pair = [client, upstream];
    const teardown = () => {
      for (const socket of pair) {
        socket.destroy();
        this.sockets.delete(socket);
      }
    };
    for (const socket of pair) {
      this.sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('error', teardown);
      socket.on('close', teardown);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

/** `url` with its host and port replaced by the proxy's. */
export function throughProxy(url: string, proxy: TcpProxy): string {
  const parsed = new URL(url);
  parsed.hostname = '127.0.0.1';
  parsed.port = String(proxy.port);
  return parsed.toString();
}
