/** The delivery capability's background work: the fan-out (one instance) and the engine (every instance). */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Metrics } from '../observability/metrics.js';
import type { Db } from '../store/db.js';
import { startDeliveryEngine, type DeliveryEngine } from './engine.js';
import { startFanout, type Fanout } from './fanout.js';

export interface DeliveryWorkers {
  fanout: Fanout;
  engine: DeliveryEngine;
  /** Wakes the fan-out (after events were stored here). */
  poke(): void;
  stop(): Promise<void>;
}

export function startDeliveryWorkers(deps: {
  db: Db;
  config: Config;
  logger?: Logger;
  userAgent: string;
  now?: () => Date;
  metrics?: Metrics;
}): DeliveryWorkers {
  const { db, config, logger } = deps;
  const engine = startDeliveryEngine({
    db,
    logger: logger?.child({ worker: 'delivery-engine' }),
    timeoutMs: config.deliveryTimeoutMs,
    concurrency: config.deliveryConcurrency,
    perSubscription: config.deliveryPerSubscriptionConcurrency,
    pollMs: config.deliveryPollMs,
    leaseMs: config.deliveryLeaseMs,
    disableAfterMs: config.deliveryDisableAfterMs,
    allowPrivateNetworks: config.webhookAllowPrivateNetworks,
    userAgent: deps.userAgent,
    now: deps.now,
    metrics: deps.metrics,
  });
  const fanout = startFanout({
    db,
    logger: logger?.child({ worker: 'delivery-fanout' }),
    pollMs: config.deliveryPollMs,
    onDeliveries: () => engine.poke(),
  });
  return {
    fanout,
    engine,
    poke: () => fanout.poke(),
    async stop() {
      await fanout.stop();
      await engine.stop();
    },
  };
}
