/**
 * What happens to an event after its commit, on PostgreSQL:
 *
 * - processing: a `publish` processor (src/processing/types/publish.ts) registered through the
 *   processors API, matching every event. Throughput: events queued with the engine off
 *   (PROCESSING_ENABLED=false), then a service with the engine on works through them; the queue
 *   (events pending or claimed) is counted every 200 ms from the moment it is ready. Latency: under
 *   a steady --steady-rate (1,000) creates/s, processed_at − created_at of every event the run
 *   stored (both the database's now() of their transactions). With the in-process bus, then with
 *   a private nats-server.
 * - delivery: one webhook subscription to every event (`event_types: [">"]`) whose endpoint is the
 *   receiver in this process (receiver.ts; WEBHOOK_ALLOW_PRIVATE_NETWORKS=true lets the service
 *   call 127.0.0.1). Throughput: events stored at once through the batch API, deliveries a second
 *   from the first arrival to the last. Latency: under a steady --steady-rate creates/s, each
 *   event's arrival at the receiver less its created_at. Both check the delivery rows
 *   (event.webhook_deliveries) at the end.
 *
 * The latency runs start once the warm-up's work is done (its events processed, or delivered), so
 * that only their own events queue in front of them.
 */
import type pg from 'pg';
import { bodyPool, cycle, makeEvent } from './payloads.js';
import { startReceiver, type Receiver } from './receiver.js';
import type { RunningService } from './service.js';
import {
  countOf,
  cpuText,
  fmt,
  lastPosition,
  log,
  ms,
  postJson,
  secs,
  spread,
  spreadText,
  waitFor,
  type Counter,
  type Suite,
} from './suite.js';

const PROCESSING_TARGET_PER_SECOND = 10_000;
const PROCESSING_TARGET_P95_MS = 100;
const DELIVERY_TARGET_PER_SECOND = 3_000;
const DELIVERY_TARGET_P95_MS = 200;
/** Connections of the steady load of the latency measurements (single creates, evenly spread). */
const STEADY_CONNECTIONS = 16;
/** Events a batch request of the preload carries, and requests in flight at once. */
const PRELOAD_BATCH = 1_000;
const PRELOAD_CONNECTIONS = 4;

/**
 * The processor every event meets. Its subject is under `event.>`, so the service's lifecycle
 * stream (`event-stream`) captures it on either bus: a publish needs a stream, and the in-process
 * bus has only the service's own.
 */
const PROCESSOR = {
  processor_name: 'bench-publish',
  processor_type: 'publish',
  config: { subject: 'event.bench.processed' },
};

/**
 * Stores `count` events (rounded up to whole batches) through the batch API, as fast as the
 * service takes them; the seconds it took.
 */
async function preload(svc: RunningService, count: number): Promise<number> {
  const nextBody = cycle(
    bodyPool(16, (random) => ({ events: Array.from({ length: PRELOAD_BATCH }, () => makeEvent(random)) }), 5),
  );
  let requests = Math.ceil(count / PRELOAD_BATCH);
  const started = performance.now();
  const worker = async () => {
    while (requests > 0) {
      requests--;
      await postJson(svc, '/api/v1/events/batch', nextBody());
    }
  };
  await Promise.all(Array.from({ length: PRELOAD_CONNECTIONS }, worker));
  return secs((performance.now() - started) / 1000);
}

/**
 * The steady load of the latency measurements, started once `backlog` (SQL counting the work the
 * events leave behind, `$1` = 0) is done; and the position after which the run's events are.
 */
async function steadyCreates(
  suite: Suite,
  svc: RunningService,
  counter: Counter,
  client: pg.Client,
  backlog: string,
) {
  const nextBody = cycle(bodyPool(4096, makeEvent, 7));
  let after = 0;
  const measured = await suite.measure(
    svc,
    STEADY_CONNECTIONS,
    'POST',
    () => ({ path: '/api/v1/events/create', body: nextBody() }),
    counter,
    {
      overallRate: suite.steadyRate,
      backlog: () => countOf(client, backlog, 0),
      beforeRun: async () => {
        after = await lastPosition(client);
      },
    },
  );
  return { ...measured, after };
}

/** Rows counted by status: `sql` groups them, `$1` = `after`. */
async function statuses(client: pg.Client, sql: string, after: number): Promise<Record<string, number>> {
  const result = await client.query<{ status: string; n: string }>(sql, [after]);
  return Object.fromEntries(result.rows.map((row) => [row.status, Number(row.n)]));
}

const statusText = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([status, n]) => `${fmt(n)} ${status}`)
    .join(', ') || 'none';

const EVENT_STATUSES = `SELECT status, count(*) AS n FROM event.events_current WHERE position > $1 GROUP BY status ORDER BY status`;
/**
 * Events waiting for processing (pending, or under a claim): their rows in the narrow queue
 * table. Polled during the throughput run: a count over event.events by status scanned the whole
 * table (no index names status), 120 ms of PostgreSQL CPU every 200 ms, a third of a core taken
 * from the service under test.
 */
const QUEUED = `SELECT count(*) AS n FROM event.processing_queue WHERE position > $1`;
/**
 * Polled while the engine works: an upper bound of QUEUED, 0 exactly when it is, read from the two
 * ends of the queue's primary key. Counting the queue every 200 ms took ~20 ms of PostgreSQL CPU a
 * poll at the start of a 150,000-event run, a tenth of a core taken from the service under test.
 */
const QUEUED_SPAN = `SELECT COALESCE(max(position) - min(position) + 1, 0) AS n FROM event.processing_queue WHERE position > $1`;

// ---------------------------------------------------------------- processing

export async function processingPart(suite: Suite): Promise<void> {
  for (const nats of [false, true]) {
    await suite.recreateDatabase();
    await suite.withBus(nats, async (natsUrl) => {
      const store = natsUrl ? 'PostgreSQL + NATS' : 'PostgreSQL (in-process bus)';
      const busEnv: Record<string, string> = natsUrl ? { NATS_URL: natsUrl } : {};
      await processingThroughput(suite, store, busEnv);
      await processingLatency(suite, store, busEnv);
    });
  }
}

async function processingThroughput(suite: Suite, store: string, busEnv: Record<string, string>) {
  const events = suite.duration * PROCESSING_TARGET_PER_SECOND;
  const name = `${store}: processing, publish processor, ${fmt(events)} queued events`;
  log(name);
  // With a processor enabled the events are stored pending; with the engine off they wait.
  let queuedSeconds = 0;
  await suite.run({ ...busEnv, PROCESSING_ENABLED: 'false' }, async (svc, counter) => {
    await postJson(svc, '/api/v1/events/processors', PROCESSOR);
    queuedSeconds = await preload(svc, events);
    // The relay's backlog (event.stored of each) is not the engine's work: let it go first.
    await counter.relayDrain?.();
  });
  await suite.waitForQuiet();
  await suite.run(busEnv, async (svc) => {
    await suite.withDatabase(async (client) => {
      const queued = () => countOf(client, QUEUED, 0);
      const cpu = suite.cpuMeter(svc);
      const atReady = await queued();
      const drained = await waitFor(
        () => countOf(client, QUEUED_SPAN, 0),
        (n) => n === 0,
        {
          stallSeconds: 30,
          maxSeconds: Math.max(60, events / 1_000),
        },
      );
      const usage = { cpu: cpu() };
      // NaN (not met) when the engine was done before the service was ready: nothing to time.
      const rate = atReady > 0 ? atReady / drained.seconds : Number.NaN;
      const counts = await statuses(client, EVENT_STATUSES, 0);
      const allProcessed = counts.processed === events;
      suite.rows.push({
        scenario: name,
        target: `≥ ${fmt(PROCESSING_TARGET_PER_SECOND)} events/s`,
        result:
          `${fmt(rate)} events/s (${fmt(atReady)} processed in ${drained.seconds} s after the service ` +
          `was ready${drained.reached ? '' : ', then it STOPPED with events left'}; ${fmt(events - atReady)} ` +
          `during its start-up; queued in ${queuedSeconds} s); events: ${statusText(counts)}; ` +
          cpuText(usage.cpu) +
          suite.disturbedNote(usage),
        met: rate >= PROCESSING_TARGET_PER_SECOND && drained.reached && allProcessed ? 'yes' : 'no',
        extra: {
          eventsPerSecond: rate,
          events,
          atReady,
          seconds: drained.seconds,
          statuses: counts,
          ...usage,
        },
      });
      log(`  ${suite.rows[suite.rows.length - 1]!.result}`);
    });
  });
}

async function processingLatency(suite: Suite, store: string, busEnv: Record<string, string>) {
  const name = `${store}: create → processed, publish processor, ${fmt(suite.steadyRate)} creates/s (${STEADY_CONNECTIONS} conns)`;
  log(name);
  await suite.run(busEnv, async (svc, counter) => {
    await suite.withDatabase(async (client) => {
      const { load, committed, after } = await steadyCreates(suite, svc, counter, client, QUEUED_SPAN);
      const drained = await waitFor(
        () => countOf(client, QUEUED_SPAN, after),
        (n) => n === 0,
        { stallSeconds: 30, maxSeconds: 120 },
      );
      const result = await client.query<{ ms: string }>(
        `SELECT extract(epoch FROM processed_at - created_at) * 1000 AS ms
         FROM event.events_current WHERE position > $1 AND status = 'processed'`,
        [after],
      );
      const latency = spread(result.rows.map((row) => Number(row.ms)));
      const counts = await statuses(client, EVENT_STATUSES, after);
      const all = drained.reached && latency.count === committed;
      suite.rows.push({
        scenario: name,
        target: `p95 < ${PROCESSING_TARGET_P95_MS} ms`,
        result:
          `${spreadText(latency)} (events: ${statusText(counts)}${all ? '' : ' — NOT ALL PROCESSED'}); ` +
          `${fmt(load.rps)} creates/s, create p99 ${ms(load.p99)}` +
          suite.loadSummary(load) +
          suite.disturbedNote(load),
        met: all && latency.p95 < PROCESSING_TARGET_P95_MS ? 'yes' : 'no',
        load: { ...load, connections: STEADY_CONNECTIONS },
        extra: { latency, statuses: counts },
      });
      log(`  ${suite.rows[suite.rows.length - 1]!.result}`);
    });
  });
}

// ---------------------------------------------------------------- delivery

const DELIVERY_STATUSES = `SELECT status, count(*) AS n FROM event.webhook_deliveries WHERE event_position > $1 GROUP BY status ORDER BY status`;
const DELIVERY_PENDING = `SELECT count(*) AS n FROM event.webhook_deliveries WHERE event_position > $1 AND status = 'pending'`;
/** Pending deliveries, and the events the fan-out has not matched yet (its checkpoint is saved every 200 ms). */
const DELIVERY_BACKLOG = `SELECT (SELECT count(*) FROM event.webhook_deliveries WHERE event_position > $1 AND status = 'pending')
  + GREATEST(0, (SELECT COALESCE(max(position), 0) FROM event.events)
    - (SELECT position FROM event.relay_checkpoints WHERE name = 'delivery-fanout')) AS n`;

/**
 * The delivery rows of the events after `after`, once none is pending any more (an attempt is
 * recorded shortly after its answer), and the attempts they took.
 */
async function deliveryRows(suite: Suite, after: number) {
  return suite.withDatabase(async (client) => {
    await waitFor(
      () => countOf(client, DELIVERY_PENDING, after),
      (n) => n === 0,
      { stallSeconds: 10, maxSeconds: 30 },
    );
    const counts = await statuses(client, DELIVERY_STATUSES, after);
    const attempts = await countOf(
      client,
      `SELECT COALESCE(sum(attempts), 0) AS n FROM event.webhook_deliveries WHERE event_position > $1`,
      after,
    );
    return { counts, attempts, text: `webhook_deliveries: ${statusText(counts)}, ${fmt(attempts)} attempts` };
  });
}

export async function deliveryPart(suite: Suite): Promise<void> {
  await suite.recreateDatabase();
  const receiver = await startReceiver();
  try {
    const env = { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' };
    await suite.run(env, async (svc) => {
      await postJson(svc, '/api/v1/events/subscriptions', {
        subscriber_name: 'bench-receiver',
        event_types: ['>'],
        callback_url: receiver.url,
      });
      await deliveryThroughput(suite, svc, receiver);
    });
    await suite.run(env, (svc, counter) => deliveryLatency(suite, svc, counter, receiver));
  } finally {
    await receiver.close();
  }
}

async function deliveryThroughput(suite: Suite, svc: RunningService, receiver: Receiver) {
  const events = suite.duration * DELIVERY_TARGET_PER_SECOND;
  const name = `PostgreSQL: webhook delivery, ${fmt(events)} events stored at once, one subscription`;
  log(name);
  await suite.waitForQuiet();
  const after = await suite.withDatabase(lastPosition);
  const before = receiver.arrivals.size;
  const cpu = suite.cpuMeter(svc);
  const startedAt = Date.now();
  const storedSeconds = await preload(svc, events);
  const arrived = await waitFor(
    () => receiver.arrivals.size - before,
    (n) => n >= events,
    { stallSeconds: 15, maxSeconds: Math.max(120, events / 500) },
  );
  const usage = { cpu: cpu() };
  const times = [...receiver.arrivals.values()].slice(before);
  const first = times.reduce((a, b) => Math.min(a, b), Infinity);
  const last = times.reduce((a, b) => Math.max(a, b), -Infinity);
  const rate = times.length / ((last - first) / 1000);
  const rows = await deliveryRows(suite, after);
  const allDelivered = arrived.reached && rows.counts.delivered === events;
  suite.rows.push({
    scenario: name,
    target: `≥ ${fmt(DELIVERY_TARGET_PER_SECOND)} deliveries/s`,
    result:
      `${fmt(rate)} deliveries/s (${fmt(times.length)} received in ${secs((last - first) / 1000)} s from the ` +
      `first to the last${arrived.reached ? '' : ' — MISSING some'}; the last ${secs((last - startedAt) / 1000)} s ` +
      `after the first event was stored, all stored in ${storedSeconds} s); ${rows.text}; ` +
      `${fmt(receiver.duplicates())} duplicate requests; ${cpuText(usage.cpu)} (the receiver is loadgen)` +
      suite.disturbedNote(usage),
    met: rate >= DELIVERY_TARGET_PER_SECOND && allDelivered ? 'yes' : 'no',
    extra: { deliveriesPerSecond: rate, events, received: times.length, deliveries: rows.counts, ...usage },
  });
  log(`  ${suite.rows[suite.rows.length - 1]!.result}`);
}

async function deliveryLatency(suite: Suite, svc: RunningService, counter: Counter, receiver: Receiver) {
  const name = `PostgreSQL: create → webhook received, ${fmt(suite.steadyRate)} creates/s (${STEADY_CONNECTIONS} conns), one subscription`;
  log(name);
  const { load, after, created } = await suite.withDatabase(async (client) => {
    const measured = await steadyCreates(suite, svc, counter, client, DELIVERY_BACKLOG);
    const result = await client.query<{ event_id: string; created_at: Date }>(
      'SELECT event_id, created_at FROM event.events WHERE position > $1',
      [measured.after],
    );
    return { ...measured, created: result.rows };
  });
  const received = () => created.filter((event) => receiver.arrivals.has(event.event_id));
  const arrived = await waitFor(
    () => received().length,
    (n) => n >= created.length,
    { stallSeconds: 10, maxSeconds: 60 },
  );
  const latency = spread(
    received().map((event) => receiver.arrivals.get(event.event_id)! - event.created_at.getTime()),
  );
  const rows = await deliveryRows(suite, after);
  const all = arrived.reached && rows.counts.delivered === created.length;
  suite.rows.push({
    scenario: name,
    target: `p95 < ${DELIVERY_TARGET_P95_MS} ms`,
    result:
      `${spreadText(latency)} (${fmt(latency.count)} of ${fmt(created.length)} events received` +
      `${all ? '' : ' — NOT ALL DELIVERED'}; ${rows.text}); ${fmt(load.rps)} creates/s, create p99 ${ms(load.p99)}` +
      suite.loadSummary(load) +
      suite.disturbedNote(load),
    met: all && latency.p95 < DELIVERY_TARGET_P95_MS ? 'yes' : 'no',
    load: { ...load, connections: STEADY_CONNECTIONS },
    extra: { latency, deliveries: rows.counts },
  });
  log(`  ${suite.rows[suite.rows.length - 1]!.result}`);
}
