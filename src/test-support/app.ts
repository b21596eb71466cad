/** Builds the real app over a real database for tests that speak HTTP (via inject or a real port). */
import { buildApp, type App } from '../app.js';
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

export async function startTestApp(kind: StoreKind, env: Record<string, string> = {}): Promise<TestApp> {
  const opened = await openTestDb(kind);
  const config = loadConfig({ LOG_LEVEL: 'silent', ...env });
  const store = createEventStore(opened.db);
  const bus = createMemoryBus();
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
      await bus.close();
      await opened.close();
    },
  };
}

export const STORE_KINDS: StoreKind[] = ['postgres', 'pglite'];
