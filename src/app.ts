/**
 * Composition root: opens the store, builds the HTTP app from its capabilities, and hands back
 * what `main.ts` (or a test, or an embedding program) needs to run and stop it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { LogController, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { Bus } from './bus/bus.js';
import { openBus } from './bus/index.js';
import { startOutboxRelay, type Relay } from './bus/outbox.js';
import { subscriptionRoutes } from './delivery/routes.js';
import { createSubscriptionService } from './delivery/service.js';
import { startDeliveryWorkers, type DeliveryWorkers } from './delivery/workers.js';
import { createEventService } from './events/service.js';
import { eventRoutes } from './events/routes.js';
import { registerErrorHandling, toHttpError } from './http/errors.js';
import { healthRoutes } from './http/health.js';
import { authRoutes, setUpAuth } from './auth/index.js';
import { registerOpenApi } from './http/openapi.js';
import { validatorCompiler } from './http/validation.js';
import { mapBackendMessage } from './ingest/backend.js';
import { trustedProxies } from './ingest/client-ip.js';
import { deadLetterRoutes } from './ingest/dead-letters.js';
import { FRONTEND_PREFIX, frontendRoutes } from './ingest/frontend.js';
import { createFrontendCollector } from './ingest/frontend-collector.js';
import { mapFrontendMessage } from './ingest/frontend-model.js';
import {
  BACKEND_DURABLE,
  BACKEND_SUBJECTS,
  FRONTEND_DURABLE,
  FRONTEND_SUBJECTS,
  ingestStreamSpec,
  startIngestConsumer,
} from './ingest/nats-consumer.js';
import { rudderstackRoutes } from './ingest/rudderstack.js';
import { createSegmentIngest } from './ingest/segment-ingest.js';
import { trackingRoutes } from './ingest/tracking.js';
import { childLoggerFactory, genReqId, registerRequestObservability } from './observability/http.js';
import { createTraceScope, observedStore, tracedBus, withHeaderTrace } from './observability/ingest.js';
import { createMetrics, IngestChannel, type Metrics } from './observability/metrics.js';
import { metricsRoutes } from './observability/routes.js';
import { createStoreStateCollector } from './observability/store-state.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { isUnavailable, type Db } from './store/db.js';
import { createEventStore, type Appended, type EventStore } from './store/index.js';
import { migrate } from './store/migrate.js';
import { createPgDb } from './store/pg.js';
import { createPgliteDb } from './store/pglite.js';
import { createDeclaredProjections } from './projections/declared.js';
import { startProjector, type Projector } from './projections/projector.js';
import { projectionRoutes } from './projections/routes.js';
import { streamRoutes } from './streams/routes.js';
import { maxRunMs, startProcessingEngine, type ProcessingEngine } from './processing/engine.js';
import type { ProcessorTypes } from './processing/processor-type.js';
import { createProcessorRegistry } from './processing/registry.js';
import { processingRoutes } from './processing/routes.js';
import { createProcessorTypes } from './processing/types/index.js';
import { replayRoutes } from './replay/routes.js';
import { createReplayService } from './replay/service.js';
import { startReplayWorker, type ReplayWorker } from './replay/worker.js';

export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
    dir = dirname(dir);
  }
  return '0.0.0';
}

/**
 * Opens the configured store (PostgreSQL or embedded PGlite) and applies migrations. A PostgreSQL
 * that is not reachable yet (it often starts after us) is waited for, up to `startupWaitMs`.
 */
export async function openDb(config: Config, logger?: Logger, startupWaitMs = 60_000): Promise<Db> {
  const db = config.databaseUrl
    ? createPgDb({
        connectionString: config.databaseUrl,
        poolSize: config.dbPoolSize,
        statementTimeoutMs: config.dbStatementTimeoutMs,
        logger,
      })
    : await createPgliteDb(config.dataDir);
  const deadline = Date.now() + startupWaitMs;
  for (let attempt = 1; ; attempt++) {
    try {
      await migrate(db);
      return db;
    } catch (error) {
      const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
      if (isUnavailable(cause) && Date.now() < deadline) {
        logger?.warn({ err: cause, attempt }, 'database not reachable yet, retrying');
        await sleep(Math.min(5000, 250 * 2 ** attempt));
        continue;
      }
      await db.close();
      throw error;
    }
  }
}

export interface AppDeps {
  config: Config;
  store: EventStore;
  bus: Bus;
  logger: Logger | false;
  now?: () => Date;
  /** Processor types of an embedding program, beside the built-in ones (README "Processors"). */
  processorTypes?: ProcessorTypes;
  /** Wakes the processing engine (after a retry on demand); without it the engine's poll finds the work. */
  pokeProcessing?: () => void;
  /** The metrics registry, shared with `startWorkers` (default: a new one, of this app alone). */
  metrics?: Metrics;
}

export interface App {
  http: FastifyInstance;
  /** What `GET /metrics` reports. */
  metrics: Metrics;
  /** Marks the service as shutting down: readiness turns 503. */
  beginShutdown(): void;
}

export async function buildApp(deps: AppDeps): Promise<App> {
  const { config, store } = deps;
  const now = deps.now ?? (() => new Date());
  let shuttingDown = false;
  const http = Fastify({
    loggerInstance: deps.logger === false ? undefined : deps.logger,
    logger: deps.logger === false ? false : undefined,
    bodyLimit: config.bodyLimitBytes,
    requestTimeout: config.requestTimeoutMs,
    // genReqId takes a sane X-Request-Id (src/observability/http.ts); any other is replaced.
    requestIdHeader: false,
    // Path parameters are event ids (255 characters) and stream ids (357), URL-encoded up to 9
    // bytes a character; the default of 100 refused ids the API itself accepts.
    routerOptions: { maxParamLength: 4096 },
    // Bad URL encoding and over-long parameters: answered in the same error shape as the rest.
    frameworkErrors: (error, _request, reply) => {
      const mapped = toHttpError(error);
      void (reply as FastifyReply).code(mapped.status).type('application/json').send(mapped.body);
    },
    logController: new LogController({ requestIdLogLabel: 'request_id' }),
    genReqId,
    childLoggerFactory,
  }) as unknown as FastifyInstance;
  // Every body is JSON: text/plain (which Fastify parses by default) is a 415, not a 422.
  http.removeContentTypeParser('text/plain');
  http.setValidatorCompiler(validatorCompiler);
  registerErrorHandling(http);
  const metrics = deps.metrics ?? createMetrics({ db: store.db });
  const traces = createTraceScope();
  registerRequestObservability(http, { metrics, traces });
  /** The store as an ingest channel uses it: counted, and traced (src/observability/ingest.ts). */
  const ingestStore = (channel: IngestChannel) => observedStore(store, { channel, metrics, traces });
  // Before any route: each gets its access from src/auth/policy.ts as it is registered.
  const authenticator = setUpAuth(http, config, store.db);
  const version = packageVersion();
  await registerOpenApi(http, version);

  const events = createEventService(ingestStore(IngestChannel.API), now);
  await http.register(healthRoutes, {
    version,
    now,
    isShuttingDown: () => shuttingDown,
    checks: [
      { name: 'store', critical: true, check: () => store.ping(2000) },
      // The database is the source of truth: without the bus the service still ingests.
      { name: 'bus', critical: false, check: () => deps.bus.check() },
    ],
  });
  await http.register(metricsRoutes, {
    metrics,
    storeState: createStoreStateCollector({
      db: store.db,
      metrics,
      timeoutMs: 2000,
      onError: (error) => http.log.warn({ err: error }, 'metrics: database state not read'),
    }),
  });
  await http.register(eventRoutes, { store, events, batchMaxEvents: config.batchMaxEvents });
  await http.register(streamRoutes, { store });
  await http.register(projectionRoutes, {
    db: store.db,
    snapshotEvery: config.snapshotEvery,
    declared: createDeclaredProjections({ db: store.db, now }),
  });
  await http.register(frontendRoutes, {
    prefix: FRONTEND_PREFIX,
    collector: createFrontendCollector({
      bus: tracedBus(deps.bus, traces),
      store: ingestStore(IngestChannel.FRONTEND),
      logger: deps.logger || undefined,
    }),
    natsConnected: () => deps.bus.kind === 'nats' && deps.bus.connected,
    trustedProxies: trustedProxies(config.trustedProxies),
    bodyLimitBytes: config.frontendBodyLimitBytes,
    batchMaxEvents: config.frontendBatchMaxEvents,
    rateLimitPerMinute: config.frontendRateLimitPerMinute,
    corsOrigins: config.frontendCorsOrigins,
    now,
  });
  await http.register(deadLetterRoutes, { db: store.db });
  await http.register(subscriptionRoutes, {
    subscriptions: createSubscriptionService({
      db: store.db,
      allowPrivateNetworks: config.webhookAllowPrivateNetworks,
      leaseMs: config.deliveryLeaseMs,
      now,
    }),
  });
  // Only validates configs here: connections open in the workers' own set.
  const processorTypes = createProcessorTypes({
    bus: deps.bus,
    allowPrivateNetworks: config.webhookAllowPrivateNetworks,
    custom: deps.processorTypes,
  });
  http.addHook('onClose', () => processorTypes.close());
  await http.register(processingRoutes, {
    db: store.db,
    registry: createProcessorRegistry({
      db: store.db,
      types: processorTypes,
      allowPrivateNetworks: config.webhookAllowPrivateNetworks,
    }),
    poke: deps.pokeProcessing,
  });
  await http.register(authRoutes, { db: store.db, authenticator, now });
  await http.register(replayRoutes, { replays: createReplayService({ db: store.db, now }) });
  await http.register(rudderstackRoutes, {
    ingest: createSegmentIngest(ingestStore(IngestChannel.RUDDERSTACK)),
    secret: config.rudderstackWebhookSecret,
    maxMessages: config.batchMaxEvents,
    maxBodyBytes: config.bodyLimitBytes,
    now,
  });
  await http.register(trackingRoutes, {
    ingest: createSegmentIngest(ingestStore(IngestChannel.TRACKING)),
    writeKeys: config.writeKeys,
    maxMessages: config.batchMaxEvents,
    maxMessageBytes: config.trackingMaxMessageBytes,
    maxBatchBytes: config.trackingMaxBatchBytes,
    now,
  });
  return {
    http,
    metrics,
    beginShutdown() {
      shuttingDown = true;
    },
  };
}

export interface Workers {
  relay: Relay;
  /** The processing engine; null when PROCESSING_ENABLED=false. */
  processing: ProcessingEngine | null;
  /** Webhook delivery: the fan-out and the delivery engine. */
  delivery: DeliveryWorkers;
  /** Keeps the states of declared projections current (one instance at a time). */
  projector: Projector;
  /** Works through replay jobs (src/replay/worker.ts). */
  replay: ReplayWorker;
  /**
   * Wakes what follows new events (the relay, the delivery fan-out; the processing engine when
   * some of them wait for processing) and hands the relay the events to publish: call after each
   * append.
   */
  onAppended(appended: Appended): void;
  /**
   * Stops every worker, each finishing or handing back what it holds; the outbox relay last.
   * `beforeRelayStop` runs once the others have stopped and before the relay does: shutdown uses
   * it to let the relay publish what is committed (src/ops/relay-drain.ts).
   */
  stop(options?: { beforeRelayStop?: (relay: Relay) => Promise<void> }): Promise<void>;
}

export interface WorkerDeps {
  db: Db;
  bus: Bus;
  store: EventStore;
  config: Config;
  logger?: Logger;
  now?: () => Date;
  /** Processor types of an embedding program (the same as given to `buildApp`). */
  processorTypes?: ProcessorTypes;
  /** Where the workers report (the registry given to `buildApp`); none when absent. */
  metrics?: Metrics;
}

/**
 * Background work: the outbox relay, the processing engine, the projector of declared
 * projections, replay jobs, and the NATS ingest consumers
 * (backend services' events on `events.backend.>`, the frontend collector's on
 * `events.frontend.>`). Each stops cleanly, finishing what it holds.
 */
export function startWorkers(deps: WorkerDeps): Workers {
  const { bus, store, config, logger, metrics } = deps;
  const now = deps.now ?? (() => new Date());
  const relay = startOutboxRelay({
    db: deps.db,
    bus,
    logger,
    metrics,
    outboxRetentionMs: config.outboxRetentionMs,
  });
  const consumerStore = (channel: IngestChannel) =>
    metrics ? observedStore(store, { channel, metrics }) : store;
  const stream = ingestStreamSpec({
    maxAgeMs: config.natsStreamMaxAgeMs,
    maxBytes: config.natsStreamMaxBytes === 0 ? -1 : config.natsStreamMaxBytes,
    duplicateWindowMs: config.natsDuplicateWindowMs,
  });
  const consumers = [
    startIngestConsumer({
      bus,
      store: consumerStore(IngestChannel.NATS_BACKEND),
      logger,
      stream,
      durable: BACKEND_DURABLE,
      filterSubject: BACKEND_SUBJECTS,
      // A `traceparent` header goes into the event's metadata, as on the HTTP channels.
      map: (message) => withHeaderTrace(mapBackendMessage(message, now), message),
    }),
    startIngestConsumer({
      bus,
      store: consumerStore(IngestChannel.NATS_FRONTEND),
      logger,
      stream,
      durable: FRONTEND_DURABLE,
      filterSubject: FRONTEND_SUBJECTS,
      map: (message) => withHeaderTrace(mapFrontendMessage(message, now), message),
    }),
  ];
  const processorTypes = createProcessorTypes({
    bus,
    allowPrivateNetworks: config.webhookAllowPrivateNetworks,
    httpConnections: config.processingConcurrency * config.processingParallelBatches,
    userAgent: `event-service/${packageVersion()} (processors)`,
    logger,
    custom: deps.processorTypes,
  });
  const processing = config.processingEnabled
    ? startProcessingEngine({
        db: deps.db,
        types: processorTypes,
        logger,
        now,
        pollMs: config.processingPollMs,
        leaseMs: config.processingLeaseMs,
        batchSize: config.processingBatchSize,
        concurrency: config.processingConcurrency,
        // PGlite runs one transaction at a time: a second batch would only wait.
        parallelBatches: deps.db.kind === 'pglite' ? 1 : config.processingParallelBatches,
        defaultTimeoutMs: config.processingTimeoutMs,
        metrics,
        retry: {
          maxRetries: config.processingMaxRetries,
          baseMs: config.processingRetryBaseMs,
          maxMs: config.processingRetryMaxMs,
        },
      })
    : null;
  const delivery = startDeliveryWorkers({
    db: deps.db,
    config,
    logger,
    userAgent: `event-service/${packageVersion()} (webhooks)`,
    now,
    metrics,
  });
  const replay = startReplayWorker({
    db: deps.db,
    bus,
    types: processorTypes,
    logger: logger?.child({ worker: 'replay' }),
    now,
    pageSize: config.replayPageSize,
    leaseMs: config.replayLeaseMs,
    pollMs: config.replayPollMs,
    // PGlite runs one transaction at a time: a second job would only wait.
    concurrency: deps.db.kind === 'pglite' ? 1 : config.replayConcurrency,
    reprocessConcurrency: config.processingConcurrency,
    defaultTimeoutMs: config.processingTimeoutMs,
    maxRunMs: maxRunMs(config.processingLeaseMs),
  });
  const projector = startProjector({
    db: deps.db,
    logger,
    pollMs: config.projectionPollMs,
    batchSize: config.projectionBatchSize,
  });
  return {
    relay,
    processing,
    delivery,
    projector,
    replay,
    onAppended(appended) {
      relay.appended(appended.events);
      if (appended.pending) processing?.poke();
      delivery.poke();
      projector.poke();
    },
    async stop(options) {
      await Promise.all(consumers.map((consumer) => consumer.stop()));
      await delivery.stop();
      await processing?.stop();
      // Finishes or hands back the page in hand; its processors need the types still open.
      await replay.stop();
      await processorTypes.close();
      await projector.stop();
      try {
        await options?.beforeRelayStop?.(relay);
      } finally {
        await relay.stop();
      }
    },
  };
}

export { createEventStore, openBus };
export { PermanentProcessorError } from './processing/processor-type.js';
export type {
  ProcessorInfo,
  ProcessorResult,
  ProcessorType,
  ProcessorTypes,
  RunContext,
  ValidateContext,
} from './processing/processor-type.js';
