/**
 * The HTTP side of a graceful shutdown (docs/operations.md): what is in flight, answers that close
 * their connection once shutdown has begun, and the close itself.
 *
 * Node's `server.close()` stops accepting and closes the keep-alive connections that are idle at
 * that moment, but a connection whose request is in flight stays open after its answer until the
 * keep-alive timeout (72 s in Fastify), and the close waits for it. So from the signal on every
 * answer carries `Connection: close` (clients reconnect, through the load balancer, to another
 * instance), and while closing, connections that still went idle are closed as they do.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';

export interface HttpTracker {
  /** Requests received and not yet answered (or abandoned). */
  requests(): number;
  /** Open client connections. */
  connections(): number;
  /** From now on, every answer (including those of requests in flight) closes its connection. */
  closeConnectionsAfterResponse(): void;
}

export function trackHttp(server: Server): HttpTracker {
  const inFlight = new Set<ServerResponse>();
  let connections = 0;
  let closing = false;
  const closeAfter = (res: ServerResponse) => {
    if (!res.headersSent) res.setHeader('connection', 'close');
  };
  server.on('connection', (socket) => {
    connections++;
    socket.once('close', () => connections--);
  });
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
    if (closing) closeAfter(res);
  });
  return {
    requests: () => inFlight.size,
    connections: () => connections,
    closeConnectionsAfterResponse() {
      closing = true;
      for (const res of inFlight) closeAfter(res);
    },
  };
}

/**
 * Stops accepting connections and resolves once every request in flight is answered and every
 * connection closed. Requests arriving meanwhile on open connections get Fastify's 503
 * (`return503OnClosing`, the default) with `Connection: close`.
 */
export async function closeHttp(http: FastifyInstance, sweepMs = 250): Promise<void> {
  const sweep = setInterval(() => http.server.closeIdleConnections(), sweepMs);
  try {
    await http.close();
  } finally {
    clearInterval(sweep);
  }
}
