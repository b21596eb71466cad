/**
 * The webhook endpoint of the delivery part: a node:http server in this process that answers 204
 * as soon as a request's body is in, and records when each event's first delivery arrived. The
 * event is named by the `webhook-id` header, `msg_<event_id>` (src/delivery/signing.ts), so no
 * body is parsed (nor its signature checked: the integration tests do that).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Receiver {
  /** Where deliveries go (a subscription's `callback_url`). */
  readonly url: string;
  /** Arrival (ms since the epoch, when its headers were in) of each event's first delivery. */
  readonly arrivals: ReadonlyMap<string, number>;
  /** Requests for an event already received (deliveries are at least once). */
  duplicates(): number;
  close(): Promise<void>;
}

const PREFIX = 'msg_';

export async function startReceiver(): Promise<Receiver> {
  const arrivals = new Map<string, number>();
  let duplicates = 0;
  const server = createServer((request, response) => {
    const arrived = Date.now();
    const id = request.headers['webhook-id'];
    if (typeof id === 'string' && id.startsWith(PREFIX)) {
      const eventId = id.slice(PREFIX.length);
      if (arrivals.has(eventId)) duplicates++;
      else arrivals.set(eventId, arrived);
    }
    request.resume();
    request.once('end', () => response.writeHead(204).end());
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhook`,
    arrivals,
    duplicates: () => duplicates,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
