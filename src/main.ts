/** Process entry: config → store → app → listen; stops cleanly on SIGTERM / SIGINT. */
import { pino } from 'pino';
import { buildApp, createEventStore, openBus, openDb, startWorkers } from './app.js';
import type { Appended } from './store/index.js';
import { ConfigError, loadConfig, RESERVED } from './config.js';

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
  for (const name of RESERVED) {
    if (config.reserved[name] !== undefined)
      logger.warn(`${name} is set but this version does not use it yet`);
  }
  logger.info(config.databaseUrl ? 'store: PostgreSQL' : `store: embedded PGlite in ${config.dataDir}`);
  logger.info(config.natsUrl ? `bus: NATS JetStream at ${config.natsUrl}` : 'bus: in-process');
  const db = await openDb(config, logger);
  const bus = await openBus(config, logger);
  // The store wakes the relay and the processing engine after each commit; the workers append
  // through the store.
  let onAppended = (_appended: Appended) => {};
  const store = createEventStore(db, { onAppended: (appended) => onAppended(appended) });
  const workers = startWorkers({ db, bus, store, config, logger });
  onAppended = (appended) => workers.onAppended(appended);
  const app = await buildApp({
    config,
    store,
    bus,
    logger,
    pokeProcessing: () => workers.processing?.poke(),
  });
  await app.http.listen({ port: config.port, host: config.host });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    app.beginShutdown();
    const timer = setTimeout(() => {
      logger.error('shutdown timed out');
      process.exit(1);
    }, 15_000);
    try {
      await app.http.close();
      await store.drain();
      await workers.stop();
      await bus.close();
      await db.close();
      clearTimeout(timer);
      logger.info('stopped');
    } catch (error) {
      logger.error({ err: error }, 'error during shutdown');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(
    `event-service: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
