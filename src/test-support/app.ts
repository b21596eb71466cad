/** Builds the real app over a real database for tests that speak HTTP (via inject or a real port). */
import { buildApp, startWorkers, type App, type Workers } from '../app.js';
import type { Bus } from '../bus/bus.js';
import { createMemoryBus } from '../bus/memory.js';
import { loadConfig, type Config } from '../config.js';
import type { ProcessorTypes } from '../processing/processor-type.js';
import type { Db } from '../store/db.js';
import { createEventStore, type EventStore } from '../store/index.js';
import { openTestDb, type StoreKind } from './db.js';

/**
 * The admin API key every test app is configured with (`ADMIN_API_KEY`): tests that speak HTTP send
 * it (test-support/http.ts does) unless they test authentication itself.
 */
export const TEST_ADMIN_API_KEY = 'test-admin-key-0123456789abcdef0123456789abcdef';

export interface TestApp {
  app: App;
  store: EventStore;
  db: Db;
  bus: Bus;
  config: Config;
  url?: string;
  /** The background workers, when started. */
  workers?: Workers;
  close(): Promise<void>;
}

export interface TestAppOptions {
  /** The bus (default: a new in-process bus); closed by `close()`. */
  bus?: Bus;
  /** Also run the background workers (outbox relay, processing, NATS ingest consumers), as `main.ts` does. */
  workers?: boolean;
  /** Processor types of an embedding program, given to both `buildApp` and `startWorkers`. */
  processorTypes?: ProcessorTypes;
}

export async function startTestApp(
  kind: StoreKind,
  env: Record<string, string> = {},
  options: TestAppOptions = {},
): Promise<TestApp> {
  const opened = await openTestDb(kind);
  const config = loadConfig({ LOG_LEVEL: 'silent', ...env });
  let workers: Workers | undefined;
  const store = createEventStore(opened.db, { onAppended: (appended) => workers?.onAppended(appended) });
  const bus = options.bus ?? createMemoryBus();
  const processorTypes = options.processorTypes;
  if (options.workers) workers = startWorkers({ db: opened.db, bus, store, config, processorTypes });
  const app = await buildApp({
    config,
    store,
    bus,
    logger: false,
    processorTypes,
    pokeProcessing: () => workers?.processing?.poke(),
  });
  await app.http.ready();
  return {
    app,
    store,
    db: opened.db,
    bus,
    config,
    url: opened.url,
    workers,
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
