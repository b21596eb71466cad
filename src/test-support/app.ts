/** Builds the real app over a real database for tests that speak HTTP (via inject or a real port). */
import { buildApp, type App } from '../app.js';
import { loadConfig, type Config } from '../config.js';
import type { Db } from '../store/db.js';
import { createEventStore, type EventStore } from '../store/index.js';
import { openTestDb, type StoreKind } from './db.js';

export interface TestApp {
  app: App;
  store: EventStore;
  db: Db;
  config: Config;
  url?: string;
  close(): Promise<void>;
}

export async function startTestApp(kind: StoreKind, env: Record<string, string> = {}): Promise<TestApp> {
  const opened = await openTestDb(kind);
  const config = loadConfig({ LOG_LEVEL: 'silent', ...env });
  const store = createEventStore(opened.db);
  const app = await buildApp({ config, store, logger: false });
  await app.http.ready();
  return {
    app,
    store,
    db: opened.db,
    config,
    url: opened.url,
    close: async () => {
      await app.http.close();
      await store.drain();
      await opened.close();
    },
  };
}

export const STORE_KINDS: StoreKind[] = ['postgres', 'pglite'];
