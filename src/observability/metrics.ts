/**
 * Every Prometheus metric of the service, in one registry per app (never prom-client's global
 * one: tests build several apps in one process). Units are in the names (`_seconds`, `_total`);
 * labels are few-valued only: a route pattern, never a URL; a status code; a channel; an event
 * source; a processor type; an outcome. The README ("Observability") lists them.
 *
 * Counters and histograms are updated where things happen (the ingest edge, the engines, the
 * relay); gauges of the database's state are read once per scrape (store-state.ts), gauges of the
 * connection pool on collect.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Db } from '../store/db.js';

/** Where an event came in (label `channel` of `event_service_events_ingested_total`). */
export const IngestChannel = {
  API: 'api',
  FRONTEND: 'frontend',
  RUDDERSTACK: 'rudderstack',
  TRACKING: 'tracking',
  NATS_BACKEND: 'nats_backend',
  NATS_FRONTEND: 'nats_frontend',
} as const;
export type IngestChannel = (typeof IngestChannel)[keyof typeof IngestChannel];

/** Followers of the event log whose distance to its head is a gauge (store-state.ts). */
export const Follower = {
  RELAY_EVENTS: 'relay_events',
  RELAY_OUTBOX: 'relay_outbox',
  DELIVERY_FANOUT: 'delivery_fanout',
  PROJECTIONS: 'projections',
} as const;
export type Follower = (typeof Follower)[keyof typeof Follower];

/** Seconds: 1 ms to 10 s, for request and run durations. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds: 5 ms to 2 min, for lags that grow while something is down. */
const LAG_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export interface Metrics {
  readonly registry: Registry;
  readonly httpRequestDuration: Histogram<'method' | 'route' | 'status_code'>;
  readonly eventsIngested: Counter<'channel' | 'source'>;
  readonly appendGroupEvents: Histogram;
  readonly processorRuns: Counter<'processor_type' | 'outcome'>;
  readonly processorRunDuration: Histogram<'processor_type' | 'outcome'>;
  readonly processingEvents: Counter<'outcome'>;
  readonly deliveryAttempts: Counter<'outcome'>;
  readonly deliveryDuration: Histogram<'outcome'>;
  readonly relayPublished: Counter<'source'>;
  readonly relayLag: Histogram<'source'>;
  readonly relayLeader: Gauge;
  readonly logHead: Gauge<'log'>;
  readonly followerLag: Gauge<'follower'>;
  readonly processingQueue: Gauge;
  readonly processingDeadLetters: Gauge;
  readonly deliveriesPending: Gauge;
  readonly ingestDeadLetters: Gauge;
  readonly replaysActive: Gauge<'status'>;
  readonly storeStateUp: Gauge;
}

export interface MetricsOptions {
  /** Its connection pool is reported (PostgreSQL; PGlite has none). */
  db?: Db;
  /** Node.js process metrics (`process_*`, `nodejs_*`); default true. */
  processMetrics?: boolean;
}

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const poolStats = options.db?.poolStats?.bind(options.db);
  if (poolStats) {
    new Gauge({
      name: 'event_service_db_pool_connections',
      help: 'Connections of the database pool, by state (total = open, idle = open and unused).',
      labelNames: ['state'],
      registers,
      collect() {
        const stats = poolStats();
        this.set({ state: 'total' }, stats.total);
        this.set({ state: 'idle' }, stats.idle);
      },
    });
    new Gauge({
      name: 'event_service_db_pool_waiting_requests',
      help: 'Requests for a connection waiting because the pool is at its size.',
      registers,
      collect() {
        this.set(poolStats().waiting);
      },
    });
    new Gauge({
      name: 'event_service_db_pool_max_connections',
      help: 'Size of the database pool (DB_POOL_SIZE).',
      registers,
      collect() {
        this.set(poolStats().max);
      },
    });
  }

  return {
    registry,
    httpRequestDuration: new Histogram({
      name: 'event_service_http_request_duration_seconds',
      help: 'HTTP requests by method, route pattern and status code: time from receipt to the answer sent.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    eventsIngested: new Counter({
      name: 'event_service_events_ingested_total',
      help: 'Events stored (idempotent repeats not counted), by ingest channel and event source.',
      labelNames: ['channel', 'source'],
      registers,
    }),
    appendGroupEvents: new Histogram({
      name: 'event_service_append_group_events',
      help: 'Events written by one append transaction (group commit).',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
      registers,
    }),
    processorRuns: new Counter({
      name: 'event_service_processor_runs_total',
      help: 'Processor runs by processor type and outcome (success, retry, failed, skipped, deferred).',
      labelNames: ['processor_type', 'outcome'],
      registers,
    }),
    processorRunDuration: new Histogram({
      name: 'event_service_processor_run_duration_seconds',
      help: 'Duration of processor runs by processor type and outcome.',
      labelNames: ['processor_type', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    processingEvents: new Counter({
      name: 'event_service_processing_events_total',
      help: 'Events whose processing attempt was written, by outcome (processed, retry, dead, released, lost).',
      labelNames: ['outcome'],
      registers,
    }),
    deliveryAttempts: new Counter({
      name: 'event_service_webhook_delivery_attempts_total',
      help: 'Webhook delivery attempts by outcome (delivered, retry, dead, cancelled).',
      labelNames: ['outcome'],
      registers,
    }),
    deliveryDuration: new Histogram({
      name: 'event_service_webhook_delivery_duration_seconds',
      help: 'Duration of webhook delivery attempts (request and response) by outcome.',
      labelNames: ['outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    relayPublished: new Counter({
      name: 'event_service_relay_published_total',
      help: 'Messages the outbox relay published, by source (events: event.stored; outbox: the other lifecycle messages).',
      labelNames: ['source'],
      registers,
    }),
    relayLag: new Histogram({
      name: 'event_service_relay_lag_seconds',
      help: 'Time from commit to publish of the messages the outbox relay published, by source.',
      labelNames: ['source'],
      buckets: LAG_BUCKETS,
      registers,
    }),
    relayLeader: new Gauge({
      name: 'event_service_relay_leader',
      help: '1 when this instance holds the outbox relay lease (one instance relays at a time).',
      registers,
    }),
    logHead: new Gauge({
      name: 'event_service_log_head_position',
      help: 'Last position of the event log (events) and of the outbox (outbox).',
      labelNames: ['log'],
      registers,
    }),
    followerLag: new Gauge({
      name: 'event_service_follower_lag_events',
      help: 'Positions between the head of the log and a follower’s persisted checkpoint (relay_events, relay_outbox, delivery_fanout; projections: the furthest behind).',
      labelNames: ['follower'],
      registers,
    }),
    processingQueue: new Gauge({
      name: 'event_service_processing_queue_events',
      help: 'Events waiting for processing (pending or claimed).',
      registers,
    }),
    processingDeadLetters: new Gauge({
      name: 'event_service_processing_dead_letters',
      help: 'Events whose processing failed for good (status failed).',
      registers,
    }),
    deliveriesPending: new Gauge({
      name: 'event_service_webhook_deliveries_pending',
      help: 'Webhook deliveries not delivered yet (due, waiting for a retry, or in flight).',
      registers,
    }),
    ingestDeadLetters: new Gauge({
      name: 'event_service_ingest_dead_letters',
      help: 'Messages an ingest channel could not turn into events (GET /api/v1/events/dead-letters).',
      registers,
    }),
    replaysActive: new Gauge({
      name: 'event_service_replays',
      help: 'Replay jobs not finished, by status (queued, running).',
      labelNames: ['status'],
      registers,
    }),
    storeStateUp: new Gauge({
      name: 'event_service_store_state_up',
      help: '1 when this scrape read the database state gauges; 0 when that failed or timed out (they then keep their last values).',
      registers,
    }),
  };
}
