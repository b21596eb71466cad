/**
 * Process entry: config → store → app → listen → (Consul registration); on SIGTERM / SIGINT the
 * graceful shutdown of docs/operations.md, bounded by SHUTDOWN_TIMEOUT_MS.
 */
import { hostname, networkInterfaces } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino, type Logger } from 'pino';
import {
  buildApp,
  createEventStore,
  openBus,
  openDb,
  packageVersion,
  startWorkers,
  type App,
} from './app.js';
import { bootstrapBanner, ensureAdminKey } from './auth/bootstrap.js';
import type { Appended } from './store/index.js';
import { createMetrics } from './observability/metrics.js';
import { flushTraces } from './observability/tracing.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import {
  AGENT_TIMEOUT_MS,
  advertisedAddress,
  buildServiceDefinition,
  createConsulAgent,
  routesFromOpenApi,
  startConsulRegistration,
  type ConsulAgent,
  type Registrar,
} from './ops/consul.js';
import { closeHttp, trackHttp } from './ops/http.js';
import { drainRelay } from './ops/relay-drain.js';
import { createShutdown } from './ops/shutdown.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`event-service: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = pino({ level: config.logLevel, base: { service: 'event_service' } });
  logger.info(config.databaseUrl ? 'store: PostgreSQL' : `store: embedded PGlite in ${config.dataDir}`);
  logger.info(config.natsUrl ? `bus: NATS JetStream at ${config.natsUrl}` : 'bus: in-process');
  const db = await openDb(config, logger);
  const bootstrap = await ensureAdminKey(db, config.adminApiKey);
  if (bootstrap.type === 'generated') {
    process.stdout.write(bootstrapBanner(bootstrap.key));
    logger.warn({ key_id: bootstrap.keyId }, 'generated the first admin API key; printed above, this once');
  }
  const bus = await openBus(config, logger);
  // The store wakes the relay and the processing engine after each commit; the workers append
  // through the store.
  let onAppended = (_appended: Appended) => {};
  // One registry for the app and the workers: GET /metrics reports both.
  const metrics = createMetrics({ db });
  const store = createEventStore(db, {
    onAppended: (appended) => onAppended(appended),
    onGroup: (events) => metrics.appendGroupEvents.observe(events),
  });
  const workers = startWorkers({ db, bus, store, config, logger, metrics });
  onAppended = (appended) => workers.onAppended(appended);
  const app = await buildApp({
    config,
    store,
    bus,
    logger,
    metrics,
    pokeProcessing: () => workers.processing?.poke(),
  });
  const tracker = trackHttp(app.http.server);
  await app.http.listen({ port: config.port, host: config.host });
  const consul = config.consulEnabled ? registerWithConsul(config, app, logger) : null;

  // Kept at the end of the sequence for the bus, the database and the Consul call to close.
  const closeReserveMs = Math.min(2000, Math.floor(config.shutdownTimeoutMs / 5));
  let deregistered: Promise<void> = Promise.resolve();
  const shutdown = createShutdown({
    timeoutMs: config.shutdownTimeoutMs,
    logger,
    exit: (code) => process.exit(code),
    steps: [
      {
        // Load balancers see 503 on /health/ready; answers close their connections; Consul stops
        // sending traffic here (deregistration runs alongside the next steps).
        name: 'not-ready',
        run: () => {
          app.beginShutdown();
          tracker.closeConnectionsAfterResponse();
          if (consul) {
            const timeoutMs = Math.min(AGENT_TIMEOUT_MS, Math.floor(config.shutdownTimeoutMs / 2));
            deregistered = consul.registrar.deregister(timeoutMs).finally(() => consul.agent.close());
          }
          if (config.shutdownDelayMs > 0)
            logger.info({ delay_ms: config.shutdownDelayMs }, 'not ready; still serving during the delay');
        },
      },
      {
        // Still serving, so that nothing is refused while load balancers catch up.
        name: 'delay',
        run: () => (config.shutdownDelayMs > 0 ? sleep(config.shutdownDelayMs) : undefined),
      },
      {
        name: 'http',
        run: () => closeHttp(app.http),
        pending: () => ({ requests_in_flight: tracker.requests(), open_connections: tracker.connections() }),
      },
      { name: 'appends', run: () => store.drain() },
      {
        name: 'workers',
        run: (deadline) =>
          workers.stop({
            beforeRelayStop: async (relay) => {
              const outcome = await drainRelay({ relay, db, bus, until: deadline - closeReserveMs });
              if (outcome.type === 'published' || outcome.type === 'not_relaying') {
                logger.debug({ outcome }, 'outbox relay: drained');
              } else {
                logger.warn(
                  { outcome },
                  'outbox relay: not everything committed is published yet; the next relay publishes the rest',
                );
              }
            },
          }),
        pending: () => ({ relay: workers.relay.stats(), processing: workers.processing?.stats() ?? null }),
      },
      { name: 'consul', run: () => deregistered },
      { name: 'bus', run: () => bus.close() },
      { name: 'db', run: () => db.close() },
      // Spans of the last requests (OTEL_EXPORTER_OTLP_ENDPOINT); nothing to do when tracing is off.
      { name: 'traces', run: () => flushTraces() },
    ],
  });
  process.on('SIGTERM', () => shutdown.begin('SIGTERM'));
  process.on('SIGINT', () => shutdown.begin('SIGINT'));
}

/** Starts the background registration; the service runs whether or not the agent answers. */
function registerWithConsul(
  config: Config,
  app: App,
  logger: Logger,
): { agent: ConsulAgent; registrar: Registrar } {
  const bound = app.http.server.address();
  const definition = buildServiceDefinition({
    address: advertisedAddress(config, networkInterfaces(), hostname()),
    port: typeof bound === 'object' && bound !== null ? bound.port : config.port,
    version: packageVersion(),
    routes: routesFromOpenApi(app.http.swagger()),
  });
  const agent = createConsulAgent({
    host: config.consulHost,
    port: config.consulPort,
    token: config.consulToken,
  });
  const registrar = startConsulRegistration({
    agent,
    definition,
    logger: logger.child({ component: 'consul' }),
  });
  return { agent, registrar };
}

main().catch((error: unknown) => {
  process.stderr.write(
    `event-service: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
