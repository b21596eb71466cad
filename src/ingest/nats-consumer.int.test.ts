/**
 * Backend services' events over NATS into the store, on the real NATS server and real stores:
 * committed then acknowledged, delivered again → stored once, poison messages terminated and
 * listed as dead letters, and a store outage answered by redelivery, not by loss.
 */
import { randomBytes } from 'node:crypto';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Bus, StreamSpec } from '../bus/bus.js';
import { createNatsBus } from '../bus/nats.js';
import { createPgDb } from '../store/pg.js';
import { createEventStore, type EventStore } from '../store/index.js';
import { startTestApp, STORE_KINDS, type TestApp } from '../test-support/app.js';
import { openTestDb, type OpenedDb } from '../test-support/db.js';
import { get, type EventJson } from '../test-support/http.js';
import { sharedNatsUrl } from '../test-support/nats.js';
import { TcpProxy, throughProxy } from '../test-support/tcp-proxy.js';
import { mapBackendMessage } from './backend.js';
import { startIngestConsumer, type IngestConsumer } from './nats-consumer.js';

async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 20_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const token = () => randomBytes(5).toString('hex');

interface Publisher {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  publish(subject: string, body: unknown, msgId?: string): Promise<{ seq: number; duplicate: boolean }>;
  idle(stream: string, durable: string): Promise<boolean>;
  close(): Promise<void>;
}

async function publisher(): Promise<Publisher> {
  const nc = await connect({ servers: sharedNatsUrl() });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  return {
    nc,
    js,
    jsm,
    async publish(subject, body, msgId) {
      const h = natsHeaders();
      h.set('x-test', 'yes');
      const data = typeof body === 'string' ? body : JSON.stringify(body);
      const ack = await js.publish(subject, data, { msgID: msgId, headers: h });
      return { seq: ack.seq, duplicate: ack.duplicate };
    },
    /** Everything delivered to the durable has been answered and nothing is waiting. */
    async idle(stream, durable) {
      const info = await jsm.consumers.info(stream, durable).catch(() => null);
      return (
        info !== null && info.num_pending === 0 && info.num_ack_pending === 0 && info.delivered.stream_seq > 0
      );
    },
    close: () => nc.close(),
  };
}

async function byType(store: EventStore, eventType: string): Promise<EventJson[]> {
  const page = await store.queryEvents(
    { event_type: eventType },
    { limit: 100, offset: 0, includeTotal: false },
  );
  return page.events as unknown as EventJson[];
}

describe.each(STORE_KINDS)('NATS backend ingest (%s)', (kind) => {
  const id = token();
  const root = `events.backend.${id}`;
  const stream: StreamSpec = { name: `ingest-${id}`, subjects: [`${root}.>`], duplicateWindowMs: 60_000 };
  let t: TestApp;
  let bus: Bus;
  let pub: Publisher;
  const running: IngestConsumer[] = [];

  const start = (durable: string, subject = `${root}.>`, spec = stream) => {
    const consumer = startIngestConsumer({
      bus,
      store: t.store,
      durable,
      filterSubject: subject,
      stream: spec,
      retryDelayMs: 200,
      map: (message) => mapBackendMessage(message, () => new Date()),
    });
    running.push(consumer);
    return consumer;
  };

  beforeAll(async () => {
    t = await startTestApp(kind);
    bus = createNatsBus({ servers: sharedNatsUrl() });
    pub = await publisher();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((c) => c.stop()));
  });
  afterAll(async () => {
    await bus?.close();
    for (const name of [stream.name, `${stream.name}-dw`])
      await pub?.jsm.streams.delete(name).catch(() => undefined);
    await pub?.close();
    await t?.close();
  });

  it('stores backend events with the seed mapping, then acknowledges them', async () => {
    const durable = `ingest-${token()}`;
    start(durable);
    await waitFor('the stream', () => pub.jsm.streams.info(stream.name).catch(() => null));
    const type = `payment.completed.${token()}`;
    await pub.publish(
      `${root}.billing.payment`,
      {
        id: 'src-evt-1',
        type,
        source: 'billing-service',
        timestamp: '2026-01-01T12:00:00Z',
        data: { user_id: 'u-42', amount: 12.5 },
      },
      `pay-${token()}`,
    );
    await pub.publish(`${root}.auth.user`, {
      event_type: `user.created.${token()}`,
      user_id: 'u-7',
      data: {},
    });
    const [event] = await waitFor('the payment event', async () => {
      const events = await byType(t.store, type);
      return events.length > 0 ? events : null;
    });
    expect(event).toMatchObject({
      event_type: type,
      event_source: 'backend',
      event_category: 'payment',
      user_id: 'u-42',
      data: { user_id: 'u-42', amount: 12.5 },
      metadata: { source_service: id, source: 'billing-service', source_event_id: 'src-evt-1' },
    });
    expect(new Date(event!.timestamp).toISOString()).toBe('2026-01-01T12:00:00.000Z');
    expect(event!.idempotency_key).toMatch(/^nats:pay-/);
    await waitFor('every message acknowledged', () => pub.idle(stream.name, durable));
    const info = await pub.jsm.consumers.info(stream.name, durable);
    expect(info.num_redelivered).toBe(0);
    expect(info.config.ack_policy).toBe('explicit');
  });

  it('stores a message delivered again, or published again with its id, once', async () => {
    const type = `order.created.${token()}`;
    const msgId = `order-${token()}`;
    const first = await pub.publish(`${root}.shop.order`, { type, data: { order_id: 'o-1' } }, msgId);
    // JetStream drops the repeat within its duplicate window
    const again = await pub.publish(`${root}.shop.order`, { type, data: { order_id: 'o-1' } }, msgId);
    expect(again).toEqual({ seq: first.seq, duplicate: true });
    const a = `ingest-${token()}`;
    start(a);
    await waitFor('the order event', async () => (await byType(t.store, type)).length === 1);
    await waitFor('consumer a done', () => pub.idle(stream.name, a));
    // A second consumer delivers the very same stream message to the store again.
    const b = `ingest-${token()}`;
    start(b);
    await waitFor('consumer b done', () => pub.idle(stream.name, b));
    expect(await byType(t.store, type)).toHaveLength(1);
  });

  it('stores a message id repeated after the duplicate window once; other content under it is a dead letter', async () => {
    const dwRoot = `events.backend.${id}dw`;
    const spec: StreamSpec = { name: `${stream.name}-dw`, subjects: [`${dwRoot}.>`], duplicateWindowMs: 100 };
    const durable = `ingest-${token()}`;
    start(durable, `${dwRoot}.>`, spec);
    await waitFor('the stream', () => pub.jsm.streams.info(spec.name).catch(() => null));
    const type = `task.done.${token()}`;
    const msgId = `task-${token()}`;
    const first = await pub.publish(`${dwRoot}.tasks.task`, { type, data: { n: 1 } }, msgId);
    await new Promise((r) => setTimeout(r, 300)); // the window is 100 ms: let it pass
    const second = await pub.publish(`${dwRoot}.tasks.task`, { type, data: { n: 1 } }, msgId);
    expect(second.duplicate).toBe(false);
    expect(second.seq).toBeGreaterThan(first.seq);
    await new Promise((r) => setTimeout(r, 300));
    const third = await pub.publish(`${dwRoot}.tasks.task`, { type, data: { n: 2 } }, msgId);
    expect(third.duplicate).toBe(false);
    await waitFor('all answered', () => pub.idle(spec.name, durable));
    const events = await byType(t.store, type);
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toEqual({ n: 1 });
    const res = await get(t, '/api/v1/events/dead-letters?channel=nats&limit=1000');
    const letters = res.json<{ items: { message_id: string; error: string }[] }>().items;
    const letter = letters.find((l) => l.message_id === msgId);
    expect(letter?.error).toMatch(/idempotency_key .* different content/);
  });

  it('terminates poison messages and records each as one dead letter, listed by the endpoint', async () => {
    const durable = `ingest-${token()}`;
    start(durable);
    await waitFor('the stream', () => pub.jsm.streams.info(stream.name).catch(() => null));
    const subject = `${root}.broken.thing`;
    const notJson = `bad-json-${token()}`;
    const noType = `no-type-${token()}`;
    const badData = `bad-data-${token()}`;
    await pub.publish(subject, 'this is not json {', notJson);
    await pub.publish(subject, { data: { user_id: 'u' } }, noType);
    await pub.publish(subject, { type: 'x', data: [1, 2] }, badData);
    const good = `device.online.${token()}`;
    await pub.publish(subject, { type: good, data: {} });
    await waitFor('the good event', async () => (await byType(t.store, good)).length === 1);
    await waitFor('every message answered', () => pub.idle(stream.name, durable));
    // give a wrongly redelivered message the time to show up
    await new Promise((r) => setTimeout(r, 500));
    const info = await pub.jsm.consumers.info(stream.name, durable);
    expect(info.num_redelivered).toBe(0);
    expect(info.num_ack_pending).toBe(0);

    const res = await get(t, '/api/v1/events/dead-letters?channel=nats&limit=1000');
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{
      items: {
        dead_letter_id: number;
        channel: string;
        subject: string;
        message_id: string;
        payload: string;
        headers: Record<string, string>;
        error: string;
        received_at: string;
      }[];
      total: number;
      limit: number;
      offset: number;
    }>();
    expect(body).toMatchObject({ limit: 1000, offset: 0 });
    const mine = body.items.filter((l) => [notJson, noType, badData].includes(l.message_id));
    expect(mine).toHaveLength(3);
    const byId = new Map(mine.map((l) => [l.message_id, l]));
    expect(byId.get(notJson)).toMatchObject({
      channel: 'nats',
      subject,
      payload: 'this is not json {',
      headers: { 'Nats-Msg-Id': notJson, 'x-test': 'yes' },
    });
    expect(byId.get(notJson)!.error).toMatch(/not JSON/);
    expect(byId.get(noType)!.error).toMatch(/no `type`/);
    expect(byId.get(badData)!.error).toMatch(/`data` must be a JSON object/);
    expect(Number.isNaN(Date.parse(byId.get(notJson)!.received_at))).toBe(false);
    expect(typeof byId.get(notJson)!.dead_letter_id).toBe('number');
    expect(typeof body.total).toBe('number');

    const page = await get(t, '/api/v1/events/dead-letters?channel=nats&limit=1&offset=1');
    expect(page.json<{ items: unknown[]; total: number }>()).toMatchObject({ total: body.total });
    expect(page.json<{ items: unknown[] }>().items).toHaveLength(1);
    const none = await get(t, '/api/v1/events/dead-letters?channel=nobody');
    expect(none.json()).toEqual({ items: [], total: 0, limit: 100, offset: 0 });
    expect((await get(t, '/api/v1/events/dead-letters?limit=0')).statusCode).toBe(422);
  });
});

describe('NATS backend ingest while the store is down (postgres)', () => {
  const id = token();
  const root = `events.backend.${id}`;
  const stream: StreamSpec = { name: `ingest-${id}`, subjects: [`${root}.>`], duplicateWindowMs: 60_000 };
  let opened: OpenedDb;
  let proxy: TcpProxy;
  let pub: Publisher;

  beforeAll(async () => {
    opened = await openTestDb('postgres');
    const target = new URL(opened.url!);
    proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.start();
    pub = await publisher();
  });
  afterAll(async () => {
    await pub?.jsm.streams.delete(stream.name).catch(() => undefined);
    await pub?.close();
    await proxy?.close();
    await opened?.close();
  });

  it('acknowledges nothing it could not commit: the message comes back and is stored once', async () => {
    const db = createPgDb({
      connectionString: throughProxy(opened.url!, proxy),
      poolSize: 2,
      statementTimeoutMs: 5000,
    });
    const store = createEventStore(db);
    const direct = createEventStore(opened.db);
    const bus = createNatsBus({ servers: sharedNatsUrl() });
    const durable = `ingest-${token()}`;
    const consumer = startIngestConsumer({
      bus,
      store,
      durable,
      filterSubject: `${root}.>`,
      stream,
      retryDelayMs: 200,
      map: (message) => mapBackendMessage(message, () => new Date()),
    });
    try {
      await waitFor('the stream', () => pub.jsm.streams.info(stream.name).catch(() => null));
      await waitFor('the consumer', () => pub.jsm.consumers.info(stream.name, durable).catch(() => null));
      await proxy.pause();
      const type = `user.registered.${token()}`;
      await pub.publish(`${root}.accounts.user`, { type, data: { user_id: 'u-1' } }, `reg-${token()}`);
      // delivered, refused (nak) and delivered again while the database is unreachable
      await waitFor(
        'a redelivery',
        async () => (await pub.jsm.consumers.info(stream.name, durable)).num_redelivered > 0,
      );
      expect(await byType(direct, type)).toHaveLength(0);
      expect((await pub.jsm.consumers.info(stream.name, durable)).num_ack_pending).toBe(1);

      await proxy.resume();
      await waitFor('the event', async () => (await byType(direct, type)).length === 1);
      await waitFor('the message acknowledged', () => pub.idle(stream.name, durable));
      expect(await byType(direct, type)).toHaveLength(1);
      const dead = await opened.db.query<{ n: number }>('SELECT count(*)::int AS n FROM event.dead_letters');
      expect(dead.rows[0]!.n).toBe(0);
    } finally {
      await proxy.resume();
      await consumer.stop();
      await bus.close();
      await db.close();
    }
  });
});
