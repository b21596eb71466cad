/**
 * One long-lived connection per URL (Redis, RabbitMQ), opened on first use, shared by every run,
 * dropped when it breaks (the next run opens a new one) and closed when the workers stop.
 */

export class ConnectionPool<C> {
  private readonly connections = new Map<string, Promise<C>>();
  private closed = false;

  constructor(
    private readonly open: (url: string) => Promise<C>,
    private readonly shut: (connection: C) => Promise<void>,
  ) {}

  /** The connection for `url`, opening it when there is none. */
  get(url: string): Promise<C> {
    if (this.closed) return Promise.reject(new Error('the processor connections are closed'));
    let connection = this.connections.get(url);
    if (!connection) {
      connection = this.open(url);
      this.connections.set(url, connection);
      connection.catch(() => {
        if (this.connections.get(url) === connection) this.connections.delete(url);
      });
    }
    return connection;
  }

  /** Forgets a broken connection (when it is still the current one) and closes it. */
  drop(url: string, connection: C): void {
    const current = this.connections.get(url);
    if (current) {
      void current.then(
        (value) => {
          if (value === connection && this.connections.get(url) === current) this.connections.delete(url);
        },
        () => undefined,
      );
    }
    this.shut(connection).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(
      all.map((pending) =>
        pending.then(
          (connection) => this.shut(connection).catch(() => undefined),
          () => undefined,
        ),
      ),
    );
  }
}

/** Rejects when `promise` has not settled within `ms` (or `signal` aborts); the work goes on. */
export async function within<T>(
  promise: Promise<T>,
  ms: number,
  signal: AbortSignal,
  what: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        const fail = () => reject(new Error(`${what} timed out after ${ms} ms`));
        timer = setTimeout(fail, ms);
        onAbort = fail;
        if (signal.aborted) fail();
        else signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
