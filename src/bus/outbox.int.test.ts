/**
 * The outbox relay against real PostgreSQL and a real (private) NATS JetStream: order and no loss
 * under concurrent writers, one relaying instance among several, NATS outages, and a service killed
 * with SIGKILL between commit and publish.
 */
import { randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeCreate } from '../domain/event.js';
import type { Db } from '../store/db.js';
import { createEventStore, type EventStore } from '../store/index.js';
import { enqueueOutbox } from '../store/outbox.js';
import { createPgDb } from '../store/pg.js';
import { createTestDatabase, type TestDatabase } from '../test-support/db.js';
import { PrivateNats } from '../test-support/nats.js';
import { ADMIN_AUTH_HEADER } from '../test-support/app.js';
import { ServiceProcess } from '../test-support/service-process.js';
import { waitFor } from '../test-support/wait.js';
import type { Bus } from './bus.js';
import { EVENT_STREAM, type Envelope } from './envelope.js';
import { createNatsBus } from './nats.js';
import { startOutboxRelay, type Relay } from './outbox.js';

interface Published {
  seq: number;
  subject: string;
  msgId: string | undefined;
  envelope: Envelope<{ event_id: string; position: number }>;
}

async function readStream(url: string): Promise<Published[]> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(EVENT_STREAM).catch(() => null);
    if (!info) return [];
    const out: Published[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(EVENT_STREAM, { seq });
      if (!m) continue;
      out.push({
        seq,
        subject: m.subject,
        msgId: m.header?.get('Nats-Msg-Id'),
        envelope: JSON.parse(new TextDecoder().decode(m.data)) as Published['envelope'],
      });
    }
    return out;
  } finally {
    await nc.close();
  }
}

/** Waits until the stream holds every id in `ids`; returns the stored events in stream order. */
async function waitForPublished(url: string, ids: Set<string>): Promise<Published[]> {
  return waitFor(`${ids.size} events in ${EVENT_STREAM}`, async () => {
    const stored = (await readStream(url)).filter((p) => p.subject === 'event.stored');
    const seen = new Set(stored.map((p) => p.envelope.id));
    return [...ids].every((id) => seen.has(id)) ? stored : undefined;
  });
}

function expectExactlyOnceInPositionOrder(published: Published[], ids: Set<string>): void {
  const mine = published.filter((p) => ids.has(p.envelope.id));
  expect(mine).toHaveLength(ids.size);
  expect(new Set(mine.map((p) => p.envelope.id)).size).toBe(ids.size);
  const positions = mine.map((p) => p.envelope.data.position);
  expect(positions).toEqual([...positions].sort((a, b) => a - b));
  for (const p of mine) {
    expect(p.msgId).toBe(p.envelope.id);
    expect(p.envelope).toMatchObject({
      type: 'event.stored',
      source: 'event_service',
      data: { event_id: p.envelope.id },
    });
  }
}

interface Instance {
  db: Db;
  bus: Bus;
  store: EventStore;
  relay: Relay;
  stop(): Promise<void>;
}

async function startInstance(
  databaseUrl: string,
  natsUrl: string,
  relayOptions: { outboxRetentionMs?: number } = {},
): Promise<Instance> {
  const db = createPgDb({ connectionString: databaseUrl, poolSize: 6, statementTimeoutMs: 30_000 });
  const bus = createNatsBus({ servers: natsUrl });
  await bus.ensureStream({ name: EVENT_STREAM, subjects: ['event.>'], duplicateWindowMs: 120_000 });
  const relay = startOutboxRelay({ db, bus, idleMs: 10, ...relayOptions });
  // As the service wires it: the relay gets the events its instance appended (and reads back the others').
  const store = createEventStore(db, { onAppended: (appended) => relay.appended(appended.events) });
  return {
    db,
    bus,
    store,
    relay,
    async stop() {
      await store.drain();
      await relay.stop();
      await bus.close();
      await db.close();
    },
  };
}

async function appendMany(store: EventStore, count: number, tag: string): Promise<string[]> {
  const ids: string[] = [];
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const normalized = normalizeCreate(
        {
          event_type: 'outbox.test',
          user_id: tag,
          data: { i },
          ...(i % 3 === 0 ? { stream_id: `relay:${tag}` } : {}),
        },
        'body',
        () => new Date(),
      );
      if (!normalized.ok) throw new Error('invalid');
      const outcome = await store.append({ events: [normalized.event] });
      if (outcome.type !== 'appended') throw new Error('rejected');
      ids.push(outcome.events[0]!.event.event_id);
    }),
  );
  return ids;
}

describe('outbox relay (postgres + NATS JetStream)', () => {
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

  it('publishes every event committed by concurrent writers exactly once, in position order', async () => {
    const instance = await startInstance(database.url, nats.url);
    try {
      const tag = randomUUID();
      const ids = new Set(await appendMany(instance.store, 600, tag));
      // and batches from concurrent writers
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          const events = Array.from({ length: 50 }, (_, i) => {
            const n = normalizeCreate({ event_type: 'outbox.batch', data: { i } }, 'body', () => new Date());
            if (!n.ok) throw new Error('invalid');
            return n.event;
          });
          const outcome = await instance.store.append({ events });
          if (outcome.type !== 'appended') throw new Error('rejected');
          for (const e of outcome.events) ids.add(e.event.event_id);
        }),
      );
      const published = await waitForPublished(nats.url, ids);
      expectExactlyOnceInPositionOrder(published, ids);
      expect(instance.relay.stats()).toMatchObject({ leader: true });
      // What the relay held since the append is what a read returns.
      for (const p of published.filter((p) => ids.has(p.envelope.id)).slice(0, 100)) {
        const stored = await instance.store.getEvent(p.envelope.id);
        expect(p.envelope.data).toEqual(JSON.parse(JSON.stringify(stored)));
      }
    } finally {
      await instance.stop();
    }
  });

  it('relays lifecycle messages written to the outbox table with their message ids', async () => {
    const instance = await startInstance(database.url, nats.url);
    try {
      const msgId = `lifecycle-${randomUUID()}`;
      await instance.db.transaction((tx) =>
        enqueueOutbox(tx, [
          {
            msgId,
            subject: 'event.subscription.created',
            payload: { id: msgId, type: 'event.subscription.created' },
          },
        ]),
      );
      const message = await waitFor('lifecycle message', async () =>
        (await readStream(nats.url)).find((p) => p.msgId === msgId),
      );
      expect(message.subject).toBe('event.subscription.created');
      expect(message.envelope).toMatchObject({ id: msgId });
    } finally {
      await instance.stop();
    }
  });

  it('deletes published lifecycle messages from the outbox once their retention has passed', async () => {
    const instance = await startInstance(database.url, nats.url, { outboxRetentionMs: 300 });
    try {
      const ids = Array.from({ length: 3 }, () => `pruned-${randomUUID()}`);
      for (const msgId of ids) {
        await instance.db.transaction((tx) =>
          enqueueOutbox(tx, [{ msgId, subject: 'event.subscription.created', payload: { id: msgId } }]),
        );
      }
      const left = async () =>
        (
          await instance.db.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM event.outbox WHERE msg_id = ANY($1::text[])',
            [ids],
          )
        ).rows[0]!.n;
      // Published, then kept for the retention, then deleted by the relay.
      const published = await waitFor('published', async () => {
        const seen = (await readStream(nats.url)).filter(
          (p) => p.msgId !== undefined && ids.includes(p.msgId),
        );
        return seen.length === ids.length ? seen : undefined;
      });
      expect(published.map((p) => p.msgId).sort()).toEqual([...ids].sort());
      await waitFor('pruned', async () => ((await left()) === 0 ? true : undefined), 10_000);
    } finally {
      await instance.stop();
    }
  });

  it('with several instances on one database, one relays; when it goes, another takes over', async () => {
    const [a, b] = [await startInstance(database.url, nats.url), await startInstance(database.url, nats.url)];
    try {
      const tag = randomUUID();
      const first = new Set([
        ...(await appendMany(a.store, 100, tag)),
        ...(await appendMany(b.store, 100, tag)),
      ]);
      expectExactlyOnceInPositionOrder(await waitForPublished(nats.url, first), first);
      const leaders = [a, b].filter((i) => i.relay.stats().leader);
      expect(leaders).toHaveLength(1);
      const [leader, standby] = leaders[0] === a ? [a, b] : [b, a];
      await leader.stop();
      const second = new Set(await appendMany(standby.store, 100, tag));
      expectExactlyOnceInPositionOrder(await waitForPublished(nats.url, second), second);
      expect(standby.relay.stats().leader).toBe(true);
    } finally {
      await Promise.allSettled([a.stop(), b.stop()]);
    }
  });

  it('keeps ingesting while NATS is down and publishes everything once it is back', async () => {
    const instance = await startInstance(database.url, nats.url);
    try {
      const tag = randomUUID();
      const ids = new Set(await appendMany(instance.store, 100, tag));
      await nats.stop();
      await waitFor('bus to notice', async () => (instance.bus.connected ? undefined : true));
      for (const id of await appendMany(instance.store, 200, tag)) ids.add(id);
      await nats.start();
      for (const id of await appendMany(instance.store, 100, tag)) ids.add(id);
      expectExactlyOnceInPositionOrder(await waitForPublished(nats.url, ids), ids);
    } finally {
      await instance.stop();
    }
  });

  it('a service killed with SIGKILL between commit and publish publishes after restart, once', async () => {
    const env = { DATABASE_URL: database.url, NATS_URL: nats.url };
    await nats.stop();
    const first = await ServiceProcess.start(env);
    const ids = new Set<string>();
    try {
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${first.url}/api/v1/events/create`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...ADMIN_AUTH_HEADER },
          body: JSON.stringify({ event_type: 'killed.before.publish', data: { i } }),
        });
        expect(res.status).toBe(201);
        ids.add(((await res.json()) as { event_id: string }).event_id);
      }
    } finally {
      await first.stop('SIGKILL');
    }
    await nats.start();
    const second = await ServiceProcess.start(env);
    try {
      expectExactlyOnceInPositionOrder(await waitForPublished(nats.url, ids), ids);
    } finally {
      await second.stop('SIGTERM');
    }
  });

  it('a service killed with SIGKILL while relaying under load loses and duplicates nothing', async () => {
    const env = { DATABASE_URL: database.url, NATS_URL: nats.url };
    const first = await ServiceProcess.start(env);
    const ids = new Set<string>();
    let killed = false;
    const load = (async () => {
      while (!killed) {
        const body = Array.from({ length: 20 }, (_, i) => ({ event_type: 'killed.under.load', data: { i } }));
        try {
          const res = await fetch(`${first.url}/api/v1/events/batch`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...ADMIN_AUTH_HEADER },
            body: JSON.stringify(body),
          });
          if (res.status === 201)
            for (const e of (await res.json()) as { event_id: string }[]) ids.add(e.event_id);
        } catch {
          // the process was killed mid-request: that batch was never acknowledged
        }
      }
    })();
    await waitFor('some load', async () => (ids.size >= 400 ? true : undefined));
    killed = true;
    await first.stop('SIGKILL');
    await load;
    const second = await ServiceProcess.start(env);
    try {
      expectExactlyOnceInPositionOrder(await waitForPublished(nats.url, ids), ids);
    } finally {
      await second.stop('SIGTERM');
    }
  });
});
