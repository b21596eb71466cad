/**
 * The lag part: how long after its commit an event's `event.stored` message reaches a subscriber
 * while ingest runs at a sustained 10,000 events/s (batches of 100 at 100 requests a second,
 * evenly spread: an open loop, load.ts), on PostgreSQL with a private nats-server. The outbox relay
 * (src/bus/outbox.ts) publishes every committed event to JetStream; this process subscribes to the
 * subject with the NATS client and takes, per message, its arrival time less the event's commit
 * time. That is `pg_xact_commit_timestamp` of the row when the server keeps commit timestamps
 * (`track_commit_timestamp = on`: a private cluster, `--admin-url`); else the envelope's `time`
 * (the event's `created_at`: now() at the start of the appending transaction, which for a group
 * of thousands of events is well before its commit, so that figure overstates the lag). Both
 * clocks are this machine's.
 */
import { connect } from '@nats-io/transport-node';
import type pg from 'pg';
import { LifecycleSubject } from '../src/bus/envelope.js';
import { bodyPool, cycle, makeEvent } from './payloads.js';
import { countOf, fmt, lastPosition, log, ms, spread, spreadText, waitFor, type Suite } from './suite.js';

const EVENTS_PER_SECOND = 10_000;
const BATCH = 100;
const CONNECTIONS = 16;
const TARGET_P99_MS = 100;
/** Ingest counts as sustained at this share of the rate asked for. */
const SUSTAINED = 0.95;
/** Events after $1 the relay has not published yet (its checkpoint is saved every 200 ms). */
const RELAY_BACKLOG = `SELECT GREATEST(0, COALESCE((SELECT max(position) FROM event.events WHERE position > $1), 0)
  - (SELECT position FROM event.relay_checkpoints WHERE name = '${LifecycleSubject.STORED}')) AS n`;

export async function lagPart(suite: Suite): Promise<void> {
  await suite.recreateDatabase();
  const nextBody = cycle(
    bodyPool(64, (random) => ({ events: Array.from({ length: BATCH }, () => makeEvent(random)) }), 99),
  );
  const next = () => ({ path: '/api/v1/events/batch', body: nextBody() });
  await suite.withBus(true, (natsUrl) =>
    suite.run({ NATS_URL: natsUrl! }, async (svc, counter) => {
      const name =
        `PostgreSQL + NATS: commit → ${LifecycleSubject.STORED} received, ingest at ` +
        `${fmt(EVENTS_PER_SECOND)} events/s (${BATCH} events/request, ${CONNECTIONS} conns)`;
      log(name);
      const nc = await connect({ servers: natsUrl! });
      // Arrivals of the events the measured run stored (positions above `after`): the lag from
      // created_at at once, from the commit once the run is over.
      const lags: number[] = [];
      const arrivals = new Map<number, number>();
      let after = Number.POSITIVE_INFINITY;
      nc.subscribe(LifecycleSubject.STORED, {
        callback: (error, msg) => {
          if (error) return;
          const arrived = Date.now();
          const envelope = msg.json<{ time: string; data: { position: number } }>();
          if (envelope.data.position > after) {
            lags.push(arrived - Date.parse(envelope.time));
            arrivals.set(envelope.data.position, arrived);
          }
        },
      });
      try {
        const { load, committed } = await suite.withDatabase((client) =>
          suite.measure(svc, CONNECTIONS, 'POST', next, counter, {
            overallRate: EVENTS_PER_SECOND / BATCH,
            // The run starts once the relay has published the warm-up's events.
            backlog: () => countOf(client, RELAY_BACKLOG, 0),
            beforeRun: async () => {
              lags.length = 0;
              after = await lastPosition(client);
            },
          }),
        );
        // The relay may still be publishing what the run stored.
        const received = await waitFor(
          () => lags.length,
          (n) => n >= committed,
          { stallSeconds: 5, maxSeconds: 60 },
        );
        const fromCommit = await suite.withDatabase((client) => commitLags(client, after, arrivals));
        const lag = fromCommit ? spread(fromCommit) : spread(lags);
        const fromStart = spread(lags);
        const achieved = committed / load.seconds;
        const sustained = achieved >= EVENTS_PER_SECOND * SUSTAINED;
        suite.rows.push({
          scenario: name,
          target: `p99 < ${TARGET_P99_MS} ms at ${fmt(EVENTS_PER_SECOND)} events/s`,
          result:
            (fromCommit
              ? `from the commit: ${spreadText(lag)}; from created_at: p50 ${ms(fromStart.p50)}, p99 ${ms(fromStart.p99)}`
              : `from created_at (the server keeps no commit timestamps): ${spreadText(lag)}`) +
            `; ingest ${fmt(achieved)} events/s` +
            (sustained ? '' : ` (${fmt(EVENTS_PER_SECOND)}/s NOT sustained)`) +
            ` (${fmt(committed)} committed, ${fmt(lag.count)} messages received` +
            `${received.reached ? '' : ' — MISSING'}); batch p99 ${ms(load.p99)}` +
            suite.loadSummary(load) +
            suite.disturbedNote(load),
          met: sustained && received.reached && lag.p99 < TARGET_P99_MS ? 'yes' : 'no',
          load: { ...load, connections: CONNECTIONS },
          extra: {
            lag,
            fromCreatedAt: fromStart,
            fromCommit: fromCommit !== null,
            eventsPerSecond: achieved,
            committed,
          },
        });
        log(`  ${suite.rows[suite.rows.length - 1]!.result}`);
      } finally {
        await nc.close();
      }
    }),
  );
}

/**
 * Arrival less commit time, per received event, from `pg_xact_commit_timestamp`; null when the
 * server does not keep commit timestamps.
 */
async function commitLags(
  client: pg.Client,
  after: number,
  arrivals: ReadonlyMap<number, number>,
): Promise<number[] | null> {
  const setting = await client.query<{ on: boolean }>(
    `SELECT current_setting('track_commit_timestamp') = 'on' AS on`,
  );
  if (!setting.rows[0]?.on || arrivals.size === 0) return null;
  const result = await client.query<{ position: string; committed: string }>(
    `SELECT position, extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000 AS committed
     FROM event.events WHERE position > $1 AND position = ANY($2::bigint[])`,
    [after, [...arrivals.keys()]],
  );
  return result.rows.map((row) => arrivals.get(Number(row.position))! - Number(row.committed));
}
