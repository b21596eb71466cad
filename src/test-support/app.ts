/** Builds the real app over a real database for tests that speak HTTP (via inject or a real port). */
import { buildApp, startWorkers, type App, type Workers } from '../app.js';
import type { Bus } from '../bus/bus.js';
import { createMemoryBus } from '../bus/memory.js';
import { loadConfig, type Config } from '../config.js';
import type { Db } from '../store/db.js';
import { createEventStore, type EventStore } from '../store/index.js';
import { openTestDb, type StoreKind } from './db.js';

export interface TestApp {
  app: App;
  store: EventStore;
  db: Db;
  bus: Bus;
  config: Config;
  url?: string;
  close(): Promise<void>;
}

export interface TestAppOptions {
  /** The bus (default: a new in-process bus); closed by `close()`. */
  bus?: Bus;
  /** Also run the background workers (outbox relay, NATS ingest consumers), as `main.ts` does. */
  workers?: boolean;
}

export async function startTestApp(
  kind: StoreKind,
  env: Record<string, string> = {},
  options: TestAppOptions = {},
): Promise<TestApp> {
  const opened = await openTestDb(kind);
  const config = loadConfig({ LOG_LEVEL: 'silent', ...env });
  let workers: Workers | undefined;
  const store = createEventStore(opened.db, { onAppended: () => workers?.relay.poke() });
  const bus = options.bus ?? createMemoryBus();
  if (options.workers) workers = startWorkers({ db: opened.db, bus, store, config });
  const app = await buildApp({ config, store, bus, logger: false });
  await app.http.ready();
  return {
    app,
    store,
    db: opened.db,
    bus,
    config,
    url: opened.url,
    close: async () => {
      await app.http.close();
      await store.drain();
      await workers?.stop();
      await bus.close();
      await opened.close();
    },
  };
}

export const STORE_KINDS: StoreKind[] = ['postgres', 'pglite'];
