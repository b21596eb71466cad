/** Builds the real app over a real database for tests that speak HTTP (via inject or a real port). */
import type { FastifyInstance, InjectOptions } from 'fastify';
import { buildApp, startWorkers, type App, type Workers } from '../app.js';
import type { Bus } from '../bus/bus.js';
import { createMemoryBus } from '../bus/memory.js';
import { loadConfig, type Config } from '../config.js';
import type { ProcessorTypes } from '../processing/processor-type.js';
import type { Db } from '../store/db.js';
import { createEventStore, type EventStore } from '../store/index.js';
import { openTestDb, type StoreKind } from './db.js';

/**
 * The admin API key every test app is configured with (`ADMIN_API_KEY`, overridable through `env`).
 * `startTestApp` wraps `app.http.inject` so that every request that sets no `authorization` header
 * of its own sends `Authorization: Bearer TEST_ADMIN_API_KEY`: tests of everything but
 * authentication speak as the admin without saying so (the helpers of http.ts included). Tests of
 * authentication itself start their app with `{ defaultAuth: false }`.
 */
export const TEST_ADMIN_API_KEY = 'test-admin-key-0123456789abcdef0123456789abcdef';

/** The header of the admin key, for requests sent without `inject` (fetch against a real port). */
export const ADMIN_AUTH_HEADER: Readonly<Record<'authorization', string>> = Object.freeze({
  authorization: `Bearer ${TEST_ADMIN_API_KEY}`,
});

type Inject = FastifyInstance['inject'];

/** The request with the admin key's header added, unless it sets `authorization` itself. */
export function withAdminKey(options: string | InjectOptions): InjectOptions {
  if (typeof options === 'string') return { url: options, headers: { ...ADMIN_AUTH_HEADER } };
  const headers = (options.headers ?? {}) as Record<string, unknown>;
  if (Object.keys(headers).some((name) => name.toLowerCase() === 'authorization')) return options;
  return { ...options, headers: { ...headers, ...ADMIN_AUTH_HEADER } };
}

/** Makes `app.inject(options)` send the admin key by default (the chained form `inject()` does not). */
function injectAsAdmin(app: FastifyInstance): void {
  const inject = app.inject.bind(app) as (...args: unknown[]) => unknown;
  app.inject = ((options?: string | InjectOptions, callback?: unknown) =>
    options === undefined
      ? inject()
      : callback === undefined
        ? inject(withAdminKey(options))
        : inject(withAdminKey(options), callback)) as Inject;
}

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
  /** `inject` sends the admin key when a request has no `authorization` header (default true). */
  defaultAuth?: boolean;
}

export async function startTestApp(
  kind: StoreKind,
  env: Record<string, string> = {},
  options: TestAppOptions = {},
): Promise<TestApp> {
  const opened = await openTestDb(kind);
  const config = loadConfig({ LOG_LEVEL: 'silent', ADMIN_API_KEY: TEST_ADMIN_API_KEY, ...env });
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
  if (options.defaultAuth !== false) injectAsAdmin(app.http);
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
