/** Both bus implementations honour the same contract; readiness reports a NATS outage as degraded. */
import { randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../app.js';
import { loadConfig } from '../config.js';
import { ADMIN_AUTH_HEADER, TEST_ADMIN_API_KEY } from '../test-support/app.js';
import { createEventStore } from '../store/index.js';
import { openTestDb, type OpenedDb } from '../test-support/db.js';
import { PrivateNats, sharedNatsUrl } from '../test-support/nats.js';
import { waitUntil } from '../test-support/wait.js';
import { BusUnavailableError, decodeText, encodeJson, type Bus, type InboundMessage } from './bus.js';
import { createMemoryBus } from './memory.js';
import { createNatsBus } from './nats.js';

const implementations: [string, () => Bus][] = [
  ['memory', () => createMemoryBus()],
  ['nats', () => createNatsBus({ servers: sharedNatsUrl() })],
];

describe.each(implementations)('bus contract (%s)', (_name, make) => {
  let bus: Bus;
  const stream = `test-${randomUUID().slice(0, 8)}`;
  const subject = `bustest.${stream}`;
  beforeAll(async () => {
    bus = make();
    await bus.ensureStream({ name: stream, subjects: [`${subject}.>`], duplicateWindowMs: 60_000 });
    await waitUntil('bus connected', () => bus.connected);
  });
  afterAll(async () => {
    await bus.close();
    if (bus.kind === 'nats') {
      // leave the shared server as it was
      const nc = await connect({ servers: sharedNatsUrl() });
      await (await jetstreamManager(nc)).streams.delete(stream).catch(() => undefined);
      await nc.close();
    }
  });

  it('a publish no stream captures fails as unavailable; concurrent publishes are each acked once', async () => {
    await expect(bus.publish(`nostream.${randomUUID()}`, encodeJson({}))).rejects.toBeInstanceOf(
      BusUnavailableError,
    );
    const many = Array.from({ length: 500 }, (_, i) =>
      bus.publish(`${subject}.many`, encodeJson({ i }), { msgId: `many-${i % 250}` }),
    );
    await Promise.all(many);
    const seen = new Set<number>();
    const subscription = bus.consume({
      stream,
      durable: `many-${stream}`,
      filterSubjects: [`${subject}.many`],
      maxBatch: 100,
      handle: async (messages: InboundMessage[]) => {
        for (const m of messages) {
          seen.add((JSON.parse(decodeText(m.data)) as { i: number }).i);
          m.ack();
        }
      },
    });
    try {
      await waitUntil('250 distinct messages', () => seen.size === 250);
      // The repeats of an id within the window were dropped: the first of each is what is stored.
      expect([...seen].every((i) => i < 250)).toBe(true);
    } finally {
      await subscription.stop();
    }
  });

  it('drops a repeated message id and delivers in order with ack, nak redelivery and term', async () => {
    for (let i = 0; i < 5; i++)
      await bus.publish(`${subject}.a`, encodeJson({ i }), { msgId: `m-${i}`, headers: { k: `v${i}` } });
    await bus.publish(`${subject}.a`, encodeJson({ i: 0 }), { msgId: 'm-0' });
    await bus.publish(`${subject}.b`, encodeJson({ other: true }), { msgId: 'other' });
    const received: { i: number; delivery: number; header: string | undefined }[] = [];
    const subscription = bus.consume({
      stream,
      durable: `c-${stream}`,
      filterSubjects: [`${subject}.a`],
      maxBatch: 10,
      maxDeliver: 3,
      handle: async (messages: InboundMessage[]) => {
        for (const m of messages) {
          const { i } = JSON.parse(decodeText(m.data)) as { i: number };
          received.push({ i, delivery: m.deliveryCount, header: m.headers.k });
          if (i === 1 && m.deliveryCount === 1) m.nak(10);
          else if (i === 2) m.term('poison');
          else m.ack();
        }
      },
    });
    await waitUntil(
      'deliveries',
      () => received.filter((r) => r.i === 1).length === 2 && received.length >= 6,
    );
    await new Promise((r) => setTimeout(r, 300));
    await subscription.stop();
    const firsts = received.filter((r) => r.delivery === 1).map((r) => r.i);
    expect(firsts).toEqual([0, 1, 2, 3, 4]);
    expect(received.filter((r) => r.i === 1).map((r) => r.delivery)).toEqual([1, 2]);
    expect(received.filter((r) => r.i === 2)).toHaveLength(1);
    expect(received.find((r) => r.i === 3)?.header).toBe('v3');
  });
});

describe('readiness with a NATS outage', () => {
  let nats: PrivateNats;
  let opened: OpenedDb;
  beforeAll(async () => {
    nats = await PrivateNats.start();
    opened = await openTestDb('postgres', 2);
  });
  afterAll(async () => {
    await nats?.destroy();
    await opened?.close();
  });

  it('reports the bus as degraded while NATS is down, keeps ingesting, and recovers by itself', async () => {
    const bus = createNatsBus({ servers: nats.url });
    const app = await buildApp({
      config: loadConfig({ LOG_LEVEL: 'silent', ADMIN_API_KEY: TEST_ADMIN_API_KEY }),
      store: createEventStore(opened.db),
      bus,
      logger: false,
    });
    try {
      await waitUntil('connected', () => bus.connected);
      const ready = async () =>
        (await app.http.inject({ method: 'GET', url: '/health/ready' })).json<{ status: string }>().status;
      expect(await ready()).toBe('ready');
      await nats.stop();
      await waitUntil('degraded', async () => (await ready()) === 'degraded');
      const created = await app.http.inject({
        method: 'POST',
        url: '/api/v1/events/create',
        headers: ADMIN_AUTH_HEADER,
        payload: { event_type: 'during.outage' },
      });
      expect(created.statusCode).toBe(201);
      await nats.start();
      await waitUntil('ready again', async () => (await ready()) === 'ready', 20_000);
    } finally {
      await app.http.close();
      await bus.close();
    }
  });
});
