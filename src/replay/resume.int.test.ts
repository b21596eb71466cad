/**
 * Replay on PostgreSQL and a real (private) NATS JetStream: a service killed with SIGKILL in the
 * middle of a replay resumes it after restart, and every event is in the stream exactly once, in
 * position order (and a page published before a crash is stored once when it is published again);
 * while NATS is down a replay waits (nothing counts as failed) and goes on when it is back.
 */
import { randomUUID } from 'node:crypto';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus } from '../bus/bus.js';
import { EVENT_STREAM, type Envelope } from '../bus/envelope.js';
import { createNatsBus } from '../bus/nats.js';
import type { StoredEvent } from '../domain/event.js';
import { createProcessorTypes } from '../processing/types/index.js';
import { getReplay } from '../store/replay.js';
import { ADMIN_AUTH_HEADER, startTestApp, type TestApp } from '../test-support/app.js';
import { createTestDatabase, type TestDatabase } from '../test-support/db.js';
import { createEvents, get, post, uid, type EventJson } from '../test-support/http.js';
import { PrivateNats } from '../test-support/nats.js';
import { ServiceProcess } from '../test-support/service-process.js';
import { waitFor } from '../test-support/wait.js';
import { replayedMessage } from './messages.js';
import { startReplayWorker } from './worker.js';

interface Stored {
  msgId: string | undefined;
  envelope: Envelope<{ event_id: string; position: number; replay_id?: string; status?: string }>;
}

/** Every message of the lifecycle stream on `subject`, in stream order (a consumer of its own). */
async function readSubject(url: string, subject: string): Promise<Stored[]> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(EVENT_STREAM, { subjects_filter: subject });
    const count = info.state.subjects?.[subject] ?? 0;
    const durable = `read_${randomUUID().slice(0, 8)}`;
    await jsm.consumers.add(EVENT_STREAM, {
      durable_name: durable,
      filter_subject: subject,
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
    });
    try {
      const consumer = await jetstream(nc).consumers.get(EVENT_STREAM, durable);
      const out: Stored[] = [];
      while (out.length < count) {
        let fetched = 0;
        for await (const m of await consumer.fetch({ max_messages: 1000, expires: 2000 })) {
          fetched++;
          out.push({
            msgId: m.headers?.get('Nats-Msg-Id'),
            envelope: JSON.parse(new TextDecoder().decode(m.data)) as Stored['envelope'],
          });
        }
        if (fetched === 0) break;
      }
      return out;
    } finally {
      await jsm.consumers.delete(EVENT_STREAM, durable);
    }
  } finally {
    await nc.close();
  }
}

function expectExactlyOnceInOrder(messages: Stored[], replayId: string, expected: EventJson[]): void {
  const inOrder = [...expected].sort((a, b) => a.position - b.position);
  expect(messages.map((m) => m.envelope.data.event_id)).toEqual(inOrder.map((e) => e.event_id));
  for (const m of messages) {
    expect(m.envelope.id).toBe(`${replayId}:${m.envelope.data.event_id}`);
    expect(m.msgId).toBe(m.envelope.id);
  }
}

describe('replay on PostgreSQL and NATS JetStream', () => {
  let nats: PrivateNats;
  let database: TestDatabase;

  beforeAll(async () => {
    nats = await PrivateNats.start();
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await nats?.destroy();
    await database?.drop();
  });

  it('a service killed with SIGKILL mid-replay resumes after restart; each event once in the stream', async () => {
    const env = {
      DATABASE_URL: database.url,
      NATS_URL: nats.url,
      REPLAY_PAGE_SIZE: '20',
      REPLAY_LEASE_MS: '2000',
      REPLAY_POLL_MS: '50',
      PROCESSING_ENABLED: 'false',
    };
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const job = async (id: string) =>
      (
        await client.query<{ status: string; total: number; replayed: number; failed: number }>(
          'SELECT status, total::int, replayed::int, failed::int FROM event.replays WHERE replay_id = $1',
          [id],
        )
      ).rows[0]!;
    const first = await ServiceProcess.start(env);
    const type = uid('killed');
    const target = uid('kill');
    const stored: EventJson[] = [];
    let replayId: string;
    try {
      for (let batch = 0; batch < 4; batch++) {
        const res = await fetch(`${first.url}/api/v1/events/batch`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...ADMIN_AUTH_HEADER },
          body: JSON.stringify(
            Array.from({ length: 1000 }, (_, i) => ({ event_type: type, data: { batch, i } })),
          ),
        });
        expect(res.status).toBe(201);
        stored.push(...((await res.json()) as EventJson[]));
      }
      const res = await fetch(`${first.url}/api/v1/events/replay`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...ADMIN_AUTH_HEADER },
        body: JSON.stringify({
          start_time: '2000-01-01T00:00:00Z',
          end_time: '2999-01-01T00:00:00Z',
          event_type: type,
          target_service: target,
        }),
      });
      expect(res.status).toBe(202);
      replayId = ((await res.json()) as { replay_id: string }).replay_id;
      await waitFor(
        'the replay under way',
        async () => ((await job(replayId)).replayed >= 200 ? true : undefined),
        60_000,
      );
    } finally {
      await first.stop('SIGKILL');
    }
    try {
      const killed = await job(replayId);
      expect(killed.status).toBe('running');
      expect(killed.replayed).toBeLessThan(4000);

      const second = await ServiceProcess.start({ ...env, LOG_LEVEL: 'info' });
      try {
        await waitFor(
          'the replay to complete',
          async () => ((await job(replayId)).status === 'completed' ? true : undefined),
          60_000,
        );
        expect(await job(replayId)).toMatchObject({
          status: 'completed',
          total: 4000,
          replayed: 4000,
          failed: 0,
        });
        expect(second.output).toContain('replay resumed');
      } finally {
        await second.stop();
      }
      expectExactlyOnceInOrder(await readSubject(nats.url, `event.replayed.${target}`), replayId, stored);
      const lifecycle = [
        ...(await readSubject(nats.url, 'event.replay.started')),
        ...(await readSubject(nats.url, 'event.replay.completed')),
      ].filter((m) => m.envelope.data.replay_id === replayId);
      expect(lifecycle.map((m) => m.envelope.type)).toEqual([
        'event.replay.started',
        'event.replay.completed',
      ]);
      expect(lifecycle[1]!.envelope.data).toMatchObject({ status: 'completed' });
    } finally {
      await client.end();
    }
  });

  describe('while NATS is down', () => {
    let t: TestApp;
    let bus: Bus;

    beforeAll(async () => {
      bus = createNatsBus({ servers: nats.url, publishTimeoutMs: 1000 });
      await bus.ensureStream({ name: EVENT_STREAM, subjects: ['event.>'], duplicateWindowMs: 120_000 });
      await waitFor('NATS connected', () => (bus.connected ? true : undefined));
      t = await startTestApp(
        'postgres',
        { REPLAY_PAGE_SIZE: '50', REPLAY_POLL_MS: '20', PROCESSING_ENABLED: 'false' },
        { workers: true, bus },
      );
    });
    afterAll(async () => {
      await t?.close();
    });

    it('a replay waits without failing anything and goes on once NATS is back', async () => {
      const type = uid('outage');
      const target = uid('outage');
      const stored = await createEvents(
        t,
        Array.from({ length: 300 }, (_, i) => ({ event_type: type, data: { i } })),
      );
      await nats.stop();
      await waitFor('the bus to notice', () => (bus.connected ? undefined : true));
      let replayId: string;
      try {
        const res = await post(t, '/api/v1/events/replay', {
          event_ids: stored.map((e) => e.event_id),
          target_service: target,
        });
        expect(res.statusCode, res.body).toBe(202);
        replayId = res.json<{ replay_id: string }>().replay_id;
        const waiting = await waitFor('the job to wait for the bus', async () => {
          const job = (await get(t, `/api/v1/events/replay/${replayId}`)).json<{
            status: string;
            error: string | null;
            replayed: number;
            failed: number;
          }>();
          return job.error !== null ? job : undefined;
        });
        expect(waiting).toMatchObject({ status: 'running', replayed: 0, failed: 0 });
        expect(waiting.error).toMatch(/bus/);
      } finally {
        await nats.start();
      }
      const done = await waitFor(
        'the replay to complete',
        async () => {
          const job = (await get(t, `/api/v1/events/replay/${replayId}`)).json<{
            status: string;
            replayed: number;
            failed: number;
            error: string | null;
          }>();
          return job.status === 'completed' ? job : undefined;
        },
        60_000,
      );
      expect(done).toMatchObject({ replayed: 300, failed: 0, error: null });
      expectExactlyOnceInOrder(await readSubject(nats.url, `event.replayed.${target}`), replayId, stored);
    });
  });

  it('a page published before a crash and published again on resume is stored once (message ids)', async () => {
    const bus = createNatsBus({ servers: nats.url });
    await bus.ensureStream({ name: EVENT_STREAM, subjects: ['event.>'], duplicateWindowMs: 120_000 });
    // No workers: the test plays the instance that published a page and died before its commit.
    const app = await startTestApp('postgres', {}, { bus });
    const types = createProcessorTypes({ bus, allowPrivateNetworks: false });
    try {
      const type = uid('crash');
      const target = uid('crash');
      const stored = await createEvents(
        app,
        Array.from({ length: 120 }, (_, i) => ({ event_type: type, data: { i } })),
      );
      const res = await post(app, '/api/v1/events/replay', {
        start_time: '2000-01-01T00:00:00Z',
        end_time: '2999-01-01T00:00:00Z',
        event_type: type,
        target_service: target,
      });
      expect(res.statusCode, res.body).toBe(202);
      const replayId = res.json<{ replay_id: string }>().replay_id;
      const job = (await getReplay(app.db, replayId))!;
      await waitFor('NATS connected', () => (bus.connected ? true : undefined));
      const time = new Date().toISOString();
      for (const event of stored.slice(0, 70)) {
        const message = replayedMessage(job, event as unknown as StoredEvent, time);
        await bus.publish(message.subject, message.data, { msgId: message.msgId });
      }
      const worker = startReplayWorker({
        db: app.db,
        bus,
        types,
        pageSize: 50,
        leaseMs: 2000,
        pollMs: 20,
        concurrency: 1,
        reprocessConcurrency: 1,
        defaultTimeoutMs: 1000,
        maxRunMs: 1000,
      });
      try {
        await waitFor('the replay to complete', async () =>
          (await getReplay(app.db, replayId))?.status === 'completed' ? true : undefined,
        );
      } finally {
        await worker.stop();
      }
      expect(await getReplay(app.db, replayId)).toMatchObject({ total: 120, replayed: 120, failed: 0 });
      expectExactlyOnceInOrder(await readSubject(nats.url, `event.replayed.${target}`), replayId, stored);
    } finally {
      await types.close();
      await app.close();
    }
  });
});
