/**
 * The replay part: how fast a replay republishes stored events to NATS JetStream (issue 5 point 6,
 * target ≥ 30,000 events/s). 500,000 events are seeded straight into the bench database
 * (seed.ts: the relay's checkpoint is moved past them, nothing is pending), a service with a
 * private nats-server starts on it, and one replay by time range covering every seeded event is
 * asked for. The rate is the events replayed over the job's own time, from its creation (just
 * before the 202) to `finished_at`, both the database's clock; the messages the stream then holds
 * on the replay's subject are counted. REPLAY_PAGE_SIZE is the service's default.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { EVENT_STREAM } from '../src/bus/envelope.js';
import { openSeedDb, seedEvents } from './seed.js';
import { ADMIN_AUTHORIZATION, type RunningService } from './service.js';
import { cpuText, fmt, log, postJson, secs, waitFor, type Suite } from './suite.js';

const EVENTS = 500_000;
const TARGET_PER_SECOND = 30_000;
const TARGET_SERVICE = 'bench';
const SUBJECT = `event.replayed.${TARGET_SERVICE}`;

interface JobJson {
  status: string;
  total: number;
  replayed: number;
  failed: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

async function job(svc: RunningService, id: string): Promise<JobJson> {
  const response = await fetch(`${svc.url}/api/v1/events/replay/${id}`, {
    headers: { authorization: ADMIN_AUTHORIZATION },
    signal: AbortSignal.timeout(30_000),
  });
  if (!response.ok) throw new Error(`GET replay: HTTP ${response.status}`);
  return (await response.json()) as JobJson;
}

/** Messages the lifecycle stream holds on `subject`. */
async function streamCount(natsUrl: string, subject: string): Promise<number> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(EVENT_STREAM, { subjects_filter: subject });
    return info.state.subjects?.[subject] ?? 0;
  } finally {
    await nc.close();
  }
}

export async function replayPart(suite: Suite, databaseUrl: string): Promise<void> {
  await suite.recreateDatabase();
  log(`seeding ${fmt(EVENTS)} events (bench/seed.ts)`);
  const db = await openSeedDb({ databaseUrl });
  let range: { from: string; to: string };
  try {
    const seeded = await seedEvents(db, { events: EVENTS, days: 7, log: (m) => log(`  seed: ${m}`) });
    log(`  seeded in ${seeded.seconds.total} s`);
    const bounds = await db.query<{ lo: Date; hi: Date }>(
      'SELECT min("timestamp") AS lo, max("timestamp") AS hi FROM event.events',
    );
    range = { from: bounds.rows[0]!.lo.toISOString(), to: bounds.rows[0]!.hi.toISOString() };
  } finally {
    await db.close();
  }
  await suite.withBus(true, (natsUrl) =>
    suite.run({ NATS_URL: natsUrl! }, async (svc) => {
      const name = `PostgreSQL + NATS: replay of ${fmt(EVENTS)} events by time range to ${SUBJECT}`;
      log(name);
      await suite.waitForQuiet();
      const cpu = suite.cpuMeter(svc);
      const asked = performance.now();
      const started = await postJson<{ replay_id: string; events_count: number }>(
        svc,
        '/api/v1/events/replay',
        { start_time: range.from, end_time: range.to, target_service: TARGET_SERVICE },
      );
      const answerMs = performance.now() - asked;
      log(
        `  202 after ${Math.round(answerMs)} ms: ${fmt(started.events_count)} events, replay ${started.replay_id}`,
      );
      let last: JobJson = await job(svc, started.replay_id);
      const progress = await waitFor(
        async () => {
          last = await job(svc, started.replay_id);
          return last.replayed + last.failed;
        },
        () => last.status !== 'queued' && last.status !== 'running',
        { stallSeconds: 60, maxSeconds: 900 },
      );
      const usage = cpu();
      const inStream = await streamCount(natsUrl!, SUBJECT);
      const seconds =
        last.finished_at === null
          ? progress.seconds
          : (Date.parse(last.finished_at) - Date.parse(last.created_at)) / 1000;
      const rate = last.replayed / seconds;
      const complete = last.status === 'completed' && last.replayed === EVENTS && inStream === EVENTS;
      suite.rows.push({
        scenario: name,
        target: `≥ ${fmt(TARGET_PER_SECOND)} events/s`,
        result:
          `${fmt(rate)} events/s (${fmt(last.replayed)} of ${fmt(last.total)} replayed in ${secs(seconds)} s, ` +
          `status ${last.status}; ${fmt(inStream)} messages in the stream on ${SUBJECT}; ` +
          `202 after ${Math.round(answerMs)} ms); ${cpuText(usage)}` +
          suite.disturbedNote({ cpu: usage }),
        met: complete && rate >= TARGET_PER_SECOND ? 'yes' : 'no',
        extra: { job: last, inStream, answerMs, seconds },
      });
      log(`  ${suite.rows[suite.rows.length - 1]!.result}`);
    }),
  );
}
