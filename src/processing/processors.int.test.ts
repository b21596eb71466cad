/**
 * Each processor type doing its real work through the running engine: webhook to a local HTTP
 * receiver, redis_stream to the local Redis (read back with XRANGE), rabbitmq to the local
 * RabbitMQ (a temporary exchange and queue, consumed), publish to the bus (in-process through the
 * app, and the shared NATS server with a stream of its own), and a custom type of an embedding
 * program. Also: priority order, events no processor matches, lifecycle messages in the outbox,
 * and the statistics rollups after status moves.
 */
import { randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import { createClient } from '@redis/client';
import { connect as amqpConnect, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { decodeText, type InboundMessage } from '../bus/bus.js';
import type { createMemoryBus } from '../bus/memory.js';
import { createNatsBus } from '../bus/nats.js';
import type { StoredEvent } from '../domain/event.js';
import { STORE_KINDS, startTestApp, type TestApp } from '../test-support/app.js';
import { createEvent, get, post, uid } from '../test-support/http.js';
import { sharedNatsUrl } from '../test-support/nats.js';
import { Receiver } from '../test-support/receiver.js';
import { expectRollupsConsistent, registerProcessor, results, settled } from '../test-support/processing.js';
import { waitUntil } from '../test-support/wait.js';
import { startProcessingEngine } from './engine.js';
import type { ProcessorType } from './processor-type.js';
import { createProcessorTypes } from './types/index.js';

const FAST = {
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
  PROCESSING_POLL_MS: '20',
  PROCESSING_RETRY_BASE_MS: '20',
  PROCESSING_RETRY_MAX_MS: '100',
};

describe.each(STORE_KINDS)('processor types through the engine (%s)', (kind) => {
  let t: TestApp;
  let receiver: Receiver;
  const audited: { event: StoredEvent; config: Record<string, unknown>; processor: string }[] = [];
  const auditLog: ProcessorType = {
    description: 'test: remembers what it saw',
    validate: (config) =>
      typeof config.table === 'string' ? [] : [{ path: 'table', message: 'is required' }],
    async run(event, config, context) {
      audited.push({ event, config, processor: context.processor.processor_name });
    },
  };

  beforeAll(async () => {
    receiver = await Receiver.start();
    t = await startTestApp(kind, FAST, { workers: true, processorTypes: { audit_log: auditLog } });
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  it('webhook: POSTs the event as JSON with its headers; processed, one success result, a lifecycle message', async () => {
    const tag = uid('wh');
    const processor = await registerProcessor(t, {
      processor_name: tag,
      processor_type: 'webhook',
      filters: { event_type: `${tag}.*` },
      config: { url: receiver.url(`/${tag}`), headers: { authorization: 'Bearer s3cret' }, timeout_ms: 5000 },
    });
    const event = await createEvent(t, { event_type: `${tag}.created`, data: { n: 1 } });
    const other = await createEvent(t, { event_type: `${tag}.x.y` });
    const done = await settled(t, event.event_id);
    expect(done).toMatchObject({
      status: 'processed',
      processors: [tag],
      error_message: null,
      retry_count: 0,
    });
    expect(done.processed_at).not.toBeNull();

    const calls = receiver.requests.filter((r) => r.path === `/${tag}`);
    expect(calls).toHaveLength(1);
    const call = calls[0]!;
    expect(call.method).toBe('POST');
    expect(call.headers['content-type']).toBe('application/json');
    expect(call.headers.authorization).toBe('Bearer s3cret');
    expect(call.headers['x-event-id']).toBe(event.event_id);
    expect(call.headers['idempotency-key']).toBe(`${event.event_id}:${processor.processor_id}`);
    expect(JSON.parse(call.body)).toMatchObject({
      event_id: event.event_id,
      event_type: `${tag}.created`,
      data: { n: 1 },
    });

    const rows = await results(t, event.event_id);
    expect(rows).toEqual([
      expect.objectContaining({
        processor_name: tag,
        processor_id: processor.processor_id,
        status: 'success',
        attempt: 1,
      }),
    ]);
    expect(rows[0]!.duration_ms).toBeGreaterThanOrEqual(0);

    // Not matched: processed without any processor, no call.
    expect(await settled(t, other.event_id)).toMatchObject({ status: 'processed', processors: [] });
    expect(await results(t, other.event_id)).toEqual([]);

    const outbox = await t.db.query<{
      subject: string;
      payload: { type: string; data: Record<string, unknown> };
    }>(`SELECT subject, payload FROM event.outbox WHERE payload->'data'->>'event_id' = $1`, [event.event_id]);
    expect(outbox.rows).toEqual([
      {
        subject: 'event.processed.success',
        payload: expect.objectContaining({
          type: 'event.processed.success',
          source: 'event_service',
          data: expect.objectContaining({
            event_id: event.event_id,
            status: 'processed',
            results: [expect.objectContaining({ processor_name: tag, status: 'success' })],
          }),
        }),
      },
    ]);
    const processorNow = (await get(t, `/api/v1/events/processors/${processor.processor_id}`)).json<{
      last_processed_at: string | null;
      error_count: number;
    }>();
    expect(processorNow.last_processed_at).not.toBeNull();
    expect(processorNow.error_count).toBe(0);
  });

  it('runs the processors of an event in priority order, higher first', async () => {
    const tag = uid('prio');
    for (const [name, priority] of [
      ['a', 1],
      ['b', 10],
      ['c', 5],
    ] as const) {
      await registerProcessor(t, {
        processor_name: `${tag}-${name}`,
        processor_type: 'webhook',
        priority,
        filters: { event_types: [`${tag}.>`] },
        config: { url: receiver.url(`/${tag}/${name}`) },
      });
    }
    const event = await createEvent(t, { event_type: `${tag}.go` });
    const done = await settled(t, event.event_id);
    expect(done.processors).toEqual([`${tag}-b`, `${tag}-c`, `${tag}-a`]);
    expect(receiver.requests.filter((r) => r.path.startsWith(`/${tag}/`)).map((r) => r.path)).toEqual([
      `/${tag}/b`,
      `/${tag}/c`,
      `/${tag}/a`,
    ]);
  });

  it('filters on source and category too; a disabled processor does not run', async () => {
    const tag = uid('flt');
    await registerProcessor(t, {
      processor_name: tag,
      processor_type: 'webhook',
      filters: { event_type: `${tag}.*`, event_source: ['frontend'], event_category: 'click' },
      config: { url: receiver.url(`/${tag}`) },
    });
    const off = await registerProcessor(t, {
      processor_name: `${tag}-off`,
      processor_type: 'webhook',
      enabled: false,
      filters: { event_type: `${tag}.*` },
      config: { url: receiver.url(`/${tag}-off`) },
    });
    const match = await createEvent(t, {
      event_type: `${tag}.a`,
      event_source: 'frontend',
      event_category: 'click',
    });
    const wrongSource = await createEvent(t, {
      event_type: `${tag}.a`,
      event_source: 'backend',
      event_category: 'click',
    });
    const wrongCategory = await createEvent(t, {
      event_type: `${tag}.a`,
      event_source: 'frontend',
      event_category: 'page_view',
    });
    expect((await settled(t, match.event_id)).processors).toEqual([tag]);
    expect((await settled(t, wrongSource.event_id)).processors).toEqual([]);
    expect((await settled(t, wrongCategory.event_id)).processors).toEqual([]);
    expect(receiver.requests.filter((r) => r.path === `/${tag}-off`)).toHaveLength(0);
    expect(off.processor_id).toBeTruthy();
  });

  it('publish: to the bus subject, with placeholders', async () => {
    const tag = uid('pub').replace(/-/g, '_');
    await t.bus.ensureStream({ name: `s_${tag}`, subjects: [`out.${tag}.>`] });
    await registerProcessor(t, {
      processor_name: tag,
      processor_type: 'publish',
      filters: { event_type: `${tag}.>` },
      config: { subject: `out.${tag}.{event_type}` },
    });
    const event = await createEvent(t, { event_type: `${tag}.order.paid`, data: { total: 5 } });
    expect((await settled(t, event.event_id)).status).toBe('processed');
    const messages = (t.bus as ReturnType<typeof createMemoryBus>).streamMessages(`s_${tag}`);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.subject).toBe(`out.${tag}.${tag}.order.paid`);
    expect(JSON.parse(decodeText(messages[0]!.data))).toMatchObject({
      event_id: event.event_id,
      data: { total: 5 },
    });
  });

  it('a custom processor type of the embedding program: validated, then run with the event and config', async () => {
    const tag = uid('custom');
    const bad = await post(t, '/api/v1/events/processors', {
      processor_name: tag,
      processor_type: 'audit_log',
      config: {},
    });
    expect(bad.statusCode).toBe(422);
    expect(bad.json<{ errors: { path: string }[] }>().errors.map((e) => e.path)).toEqual([
      'body.config.table',
    ]);
    await registerProcessor(t, {
      processor_name: tag,
      processor_type: 'audit_log',
      filters: { event_type: tag },
      config: { table: 'audit' },
    });
    const event = await createEvent(t, { event_type: tag });
    expect((await settled(t, event.event_id)).processors).toEqual([tag]);
    const seen = audited.filter((a) => a.processor === tag);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.event.event_id).toBe(event.event_id);
    expect(seen[0]!.config).toEqual({ table: 'audit' });
  });

  it('statistics rollups follow every status move', async () => {
    await waitUntil('queue empty', async () => {
      const open = await t.db.query<{ n: number }>(
        `SELECT count(*)::bigint AS n FROM event.events_current WHERE status IN ('pending', 'processing')`,
      );
      return Number(open.rows[0]!.n) === 0;
    });
    await expectRollupsConsistent(t);
  });
});

describe('redis_stream and rabbitmq against the local servers', () => {
  let t: TestApp;
  const redis = createClient({ url: inject('redisUrl') });
  let amqp: ChannelModel;
  const exchanges: string[] = [];
  const streams: string[] = [];

  beforeAll(async () => {
    t = await startTestApp('postgres', FAST, { workers: true });
    await redis.connect();
    amqp = await amqpConnect(inject('amqpUrl'));
  });
  afterAll(async () => {
    await t?.close();
    if (streams.length > 0) await redis.del(streams);
    await redis.close();
    const channel = await amqp.createChannel();
    for (const exchange of exchanges) await channel.deleteExchange(exchange);
    await amqp.close();
  });

  it('redis_stream: XADDs each event (fields and whole event), trimmed with MAXLEN ~', async () => {
    const tag = uid('rs');
    const stream = `test:${tag}:{event_type}`;
    await registerProcessor(t, {
      processor_name: tag,
      processor_type: 'redis_stream',
      filters: { event_type: `${tag}.*` },
      config: { url: inject('redisUrl'), stream, maxlen: 1000 },
    });
    const events = [];
    for (let i = 0; i < 3; i++)
      events.push(await createEvent(t, { event_type: `${tag}.created`, data: { i } }));
    for (const event of events) expect((await settled(t, event.event_id)).processors).toEqual([tag]);
    const key = `test:${tag}:${tag}.created`;
    streams.push(key);
    const entries = (await redis.xRange(key, '-', '+')) ?? [];
    expect(entries.map((e) => e.message.event_id).sort()).toEqual(events.map((e) => e.event_id).sort());
    const first = entries[0]!.message;
    expect(first.event_type).toBe(`${tag}.created`);
    expect(JSON.parse(first.event!)).toMatchObject({
      event_type: `${tag}.created`,
      data: { i: expect.any(Number) },
    });
    const rows = await results(t, events[0]!.event_id);
    expect(rows[0]).toMatchObject({ status: 'success', message: expect.stringContaining(key) });
  });

  it('rabbitmq: persistent, confirmed messages to the exchange with the routing key', async () => {
    const tag = uid('mq');
    const exchange = `test-${tag}`;
    exchanges.push(exchange);
    const channel = await amqp.createChannel();
    await channel.assertExchange(exchange, 'topic', { durable: false });
    const queue = (await channel.assertQueue('', { exclusive: true })).queue;
    await channel.bindQueue(queue, exchange, `${tag}.#`);
    const received: ConsumeMessage[] = [];
    await channel.consume(queue, (message) => message && received.push(message), { noAck: true });

    const processor = await registerProcessor(t, {
      processor_name: tag,
      processor_type: 'rabbitmq',
      filters: { event_type: `${tag}.>` },
      config: { url: inject('amqpUrl'), exchange, routing_key: '{event_type}' },
    });
    const events = [];
    for (let i = 0; i < 3; i++)
      events.push(await createEvent(t, { event_type: `${tag}.order.placed`, data: { i } }));
    for (const event of events) expect((await settled(t, event.event_id)).processors).toEqual([tag]);
    await waitUntil('messages consumed', () => received.length === 3);
    expect(received.map((m) => m.fields.routingKey)).toEqual(Array(3).fill(`${tag}.order.placed`));
    expect(received.map((m) => m.properties.deliveryMode as number)).toEqual([2, 2, 2]);
    expect(received.map((m) => m.properties.messageId as string).sort()).toEqual(
      events.map((e) => `${e.event_id}:${processor.processor_id}`).sort(),
    );
    expect(JSON.parse(received[0]!.content.toString())).toMatchObject({ event_type: `${tag}.order.placed` });
    await channel.close();
  });

  it('rabbitmq: a message no queue takes is not a success (retried, then a dead letter)', async () => {
    const tag = uid('mq-none');
    const exchange = `test-${tag}`;
    exchanges.push(exchange);
    const channel = await amqp.createChannel();
    await channel.assertExchange(exchange, 'direct', { durable: false });
    await channel.close();
    await registerProcessor(t, {
      processor_name: tag,
      processor_type: 'rabbitmq',
      filters: { event_type: tag },
      config: { url: inject('amqpUrl'), exchange, routing_key: 'nobody' },
    });
    const event = await createEvent(t, { event_type: tag });
    const done = await settled(t, event.event_id);
    expect(done).toMatchObject({ status: 'failed', retry_count: 3 });
    expect(done.error_message).toMatch(/unroutable/);
    expect((await results(t, event.event_id)).map((r) => r.status)).toEqual([
      'retry',
      'retry',
      'retry',
      'failed',
    ]);
  });

  it('redis_stream: a Redis that does not answer is retried, not fatal', async () => {
    const tag = uid('rs-down');
    await registerProcessor(t, {
      processor_name: tag,
      processor_type: 'redis_stream',
      filters: { event_type: tag },
      // Nothing listens on port 9: connection refused.
      config: { url: 'redis://127.0.0.1:9', stream: 's' },
    });
    const event = await createEvent(t, { event_type: tag });
    const done = await settled(t, event.event_id);
    expect(done.status).toBe('failed');
    expect((await results(t, event.event_id)).map((r) => r.status)).toEqual([
      'retry',
      'retry',
      'retry',
      'failed',
    ]);
    await expectRollupsConsistent(t);
  });
});

describe('publish to NATS JetStream (shared server, a stream of its own)', () => {
  const stream = `proc-${randomUUID().slice(0, 8)}`;
  const subject = `proctest.${stream}`;
  let t: TestApp;
  const nats = createNatsBus({ servers: sharedNatsUrl() });
  const types = createProcessorTypes({ bus: nats, allowPrivateNetworks: false });
  let engine: ReturnType<typeof startProcessingEngine>;

  beforeAll(async () => {
    // The app (HTTP, in-process bus) without its own workers; the engine publishes to NATS.
    t = await startTestApp('postgres', FAST);
    await nats.ensureStream({ name: stream, subjects: [`${subject}.>`], duplicateWindowMs: 60_000 });
    await waitUntil('NATS connected', () => nats.connected);
    engine = startProcessingEngine({
      db: t.db,
      types,
      pollMs: 20,
      leaseMs: 30_000,
      batchSize: 100,
      concurrency: 8,
      defaultTimeoutMs: 5000,
      retry: { maxRetries: 3, baseMs: 20, maxMs: 100 },
    });
  });
  afterAll(async () => {
    await engine?.stop();
    await types.close();
    await nats.close();
    await t?.close();
    const nc = await natsConnect({ servers: sharedNatsUrl() });
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => undefined);
    await nc.close();
  });

  it('publishes each event once to the subject, Nats-Msg-Id <event_id>:<processor_id>', async () => {
    const processor = await registerProcessor(t, {
      processor_name: uid('nats'),
      processor_type: 'publish',
      filters: { event_type: 'nats.*' },
      config: { subject: `${subject}.{event_type}` },
    });
    const events = [];
    for (let i = 0; i < 5; i++) events.push(await createEvent(t, { event_type: 'nats.sent', data: { i } }));
    for (const event of events) expect((await settled(t, event.event_id)).processors).toHaveLength(1);

    const received: InboundMessage[] = [];
    const subscription = nats.consume({
      stream,
      durable: `c-${stream}`,
      filterSubjects: [`${subject}.>`],
      maxBatch: 10,
      handle: async (messages) => {
        for (const m of messages) {
          received.push(m);
          m.ack();
        }
      },
    });
    await waitUntil('5 messages', () => received.length >= 5);
    await subscription.stop();
    expect(received).toHaveLength(5);
    expect(received.map((m) => m.subject)).toEqual(Array(5).fill(`${subject}.nats.sent`));
    expect(received.map((m) => m.headers['Nats-Msg-Id']).sort()).toEqual(
      events.map((e) => `${e.event_id}:${processor.processor_id}`).sort(),
    );
    expect(
      received.map((m) => (JSON.parse(decodeText(m.data)) as { event_id: string }).event_id).sort(),
    ).toEqual(events.map((e) => e.event_id).sort());
  });
});
