/**
 * The collector part: the public frontend collector (`POST /api/v1/events/frontend`,
 * src/ingest/frontend.ts), one event a request, on PostgreSQL twice: with the in-process bus (the
 * collector commits each event before it answers) and with a private nats-server (it answers once
 * JetStream has the event; the consumer `event-service-frontend` commits it afterwards, in
 * batches). The rate limit is off (FRONTEND_RATE_LIMIT_PER_MINUTE=0): all the load comes from one
 * client IP.
 *
 * Judged on the events committed by the end of the run (per second of it) and the p99 of the
 * answers; what the consumer still had to commit after the run is reported with the time it took
 * (settled when its JetStream backlog is empty and the count stops moving).
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { FRONTEND_DURABLE, INGEST_STREAM } from '../src/ingest/nats-consumer.js';
import { bodyPool, cycle, makeFrontendEvent } from './payloads.js';
import type { RunningService } from './service.js';
import { fmt, log, ms, waitFor, type Counter, type Suite } from './suite.js';

const PATH = '/api/v1/events/frontend';
const TARGET_PER_SECOND = 15_000;
const TARGET_P99_MS = 10;
/** Longest wait for the consumer to commit its backlog after a run, s. */
const DRAIN_SECONDS = 120;

/** The collector's own health says which road it takes: fail early when it is not the one meant. */
async function expectRoad(svc: RunningService, nats: boolean): Promise<void> {
  const response = await fetch(`${svc.url}${PATH}/health`, { signal: AbortSignal.timeout(10_000) });
  const health = (await response.json()) as { nats_connected?: boolean };
  if (health.nats_connected !== nats) {
    throw new Error(`frontend collector: nats_connected is ${health.nats_connected}, expected ${nats}`);
  }
}

/**
 * The frontend consumer's backlog: messages it has not acknowledged yet (it acknowledges after the
 * commit), i.e. what the collector accepted and the store does not hold yet. Waits until the
 * service has created the consumer.
 */
async function frontendBacklog(natsUrl: string) {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    const backlog = async () => {
      const info = await jsm.consumers.info(INGEST_STREAM, FRONTEND_DURABLE);
      return info.num_pending + info.num_ack_pending;
    };
    const found = await waitFor(
      () =>
        backlog().then(
          () => 1,
          () => 0,
        ),
      (n) => n === 1,
      { stallSeconds: 30, maxSeconds: 30 },
    );
    if (!found.reached) throw new Error(`no consumer ${FRONTEND_DURABLE} on stream ${INGEST_STREAM}`);
    return { backlog, close: () => nc.close() };
  } catch (error) {
    await nc.close();
    throw error;
  }
}

export async function collectorPart(suite: Suite, connections: number): Promise<void> {
  await suite.recreateDatabase();
  const nextBody = cycle(bodyPool(4096, makeFrontendEvent, 11));
  const next = () => ({ path: PATH, body: nextBody() });
  for (const nats of [false, true]) {
    await suite.withBus(nats, (natsUrl) =>
      suite.run(
        { FRONTEND_RATE_LIMIT_PER_MINUTE: '0', ...(natsUrl ? { NATS_URL: natsUrl } : {}) },
        async (svc, counter) => {
          await expectRoad(svc, nats);
          const consumer = natsUrl ? await frontendBacklog(natsUrl) : undefined;
          try {
            await collectorRun(suite, svc, counter, connections, next, consumer?.backlog);
          } finally {
            await consumer?.close();
          }
        },
      ),
    );
  }
}

async function collectorRun(
  suite: Suite,
  svc: RunningService,
  counter: Counter,
  connections: number,
  next: () => { path: string; body: string },
  backlog: (() => Promise<number>) | undefined,
) {
  const name = `${backlog ? 'PostgreSQL + NATS' : 'PostgreSQL'}: frontend collector, single events (${connections} conns)`;
  log(name);
  const { load, committed, committedAtEnd, settleSeconds } = await suite.measure(
    svc,
    connections,
    'POST',
    next,
    counter,
    { settleSeconds: DRAIN_SECONDS, backlog },
  );
  const committedPerSecond = committedAtEnd / load.seconds;
  // Requests cut off at the end, or timed out at the client, may still commit.
  const consistent = committed >= load.ok && committed <= load.ok + connections + load.errors;
  const late = committed - committedAtEnd;
  suite.rows.push({
    scenario: name,
    target: `≥ ${fmt(TARGET_PER_SECOND)} events/s committed, p99 < ${TARGET_P99_MS} ms`,
    result:
      `${fmt(committedPerSecond)} events/s committed during the run, ${fmt(load.rps)}/s accepted; ` +
      `p50 ${ms(load.p50)}, p99 ${ms(load.p99)} ` +
      `(${fmt(load.ok)} accepted, ${fmt(committed)} counted in the store${consistent ? '' : ' — MISMATCH'}; ` +
      (late > 0
        ? `${fmt(late)} of them committed after the run, backlog drained in ${settleSeconds} s)`
        : 'all committed by the end of the run)') +
      suite.loadSummary(load) +
      suite.disturbedNote(load),
    met: committedPerSecond >= TARGET_PER_SECOND && load.p99 < TARGET_P99_MS && consistent ? 'yes' : 'no',
    load: { ...load, connections },
    extra: { committedPerSecond, committed, committedAtEnd, drainSeconds: settleSeconds },
  });
  log(`  ${suite.rows[suite.rows.length - 1]!.result}`);
}
