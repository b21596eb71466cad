/**
 * Observability end to end on a real database, with the workers running as in `main.ts` (one
 * metrics registry for the app and the workers): `/metrics` scraped and parsed after requests,
 * creates through every channel, a processor run and a webhook delivery; request and correlation
 * ids in the JSON logs; a `traceparent` carried into the stored event, the `event.stored` message,
 * a processor's webhook call and a subscription's delivery.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, startWorkers, type App, type Workers } from '../app.js';
import { encodeJson } from '../bus/bus.js';
import { EVENT_STREAM, LifecycleSubject } from '../bus/envelope.js';
import { createMemoryBus } from '../bus/memory.js';
import { loadConfig } from '../config.js';
import { createEventStore, type Appended } from '../store/index.js';
import { TEST_ADMIN_API_KEY } from '../test-support/app.js';
import { openTestDb, type OpenedDb, type StoreKind } from '../test-support/db.js';
import { uid } from '../test-support/http.js';
import { startReceiver, type WebhookReceiver } from '../test-support/webhook-receiver.js';
import { waitFor } from '../test-support/wait.js';
import { createMetrics } from './metrics.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;
const TRACESTATE = 'congo=t61rcWkgMzE';
const WRITE_KEY = 'wk_observability_test';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format (0.0.4), as far as a test needs it: one sample a line. */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = value!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the one sample with this name and (at least) these labels; undefined when none. */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

interface Harness {
  app: App;
  workers: Workers;
  bus: ReturnType<typeof createMemoryBus>;
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

async function start(kind: StoreKind): Promise<Harness> {
  const opened: OpenedDb = await openTestDb(kind);
  const config = loadConfig({
    LOG_LEVEL: 'info',
    ADMIN_API_KEY: TEST_ADMIN_API_KEY,
    WRITE_KEYS: WRITE_KEY,
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
    PROCESSING_POLL_MS: '20',
    DELIVERY_POLL_MS: '20',
    FRONTEND_RATE_LIMIT_PER_MINUTE: '0',
  });
  const logs: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const bus = createMemoryBus();
  await bus.ensureStream({ name: EVENT_STREAM, subjects: ['event.>'] });
  const metrics = createMetrics({ db: opened.db });
  // The store wakes the workers after each commit, as in main.ts.
  let onAppended = (_appended: Appended) => {};
  const store = createEventStore(opened.db, {
    onAppended: (appended) => onAppended(appended),
    onGroup: (events) => metrics.appendGroupEvents.observe(events),
  });
  const workers = startWorkers({ db: opened.db, bus, store, config, metrics });
  onAppended = (appended) => workers.onAppended(appended);
  const app = await buildApp({
    config,
    store,
    bus,
    logger,
    metrics,
    pokeProcessing: () => workers.processing?.poke(),
  });
  await app.http.ready();
  return {
    app,
    workers,
    bus,
    logs,
    close: async () => {
      await app.http.close();
      await store.drain();
      await workers.stop();
      await bus.close();
      await opened.close();
    },
  };
}

const AUTH = { authorization: `Bearer ${TEST_ADMIN_API_KEY}` };

async function call(
  h: Harness,
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const res = await h.app.http.inject({
    method,
    url,
    headers: { ...AUTH, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
  return res;
}

async function scrape(h: Harness): Promise<Sample[]> {
  const res = await call(h, 'GET', '/metrics');
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseMetrics(res.body);
}

describe('observability on postgres', () => {
  let h: Harness;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    h = await start('postgres');
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await h?.close();
    await receiver?.close();
  });

  it('reports requests, every ingest channel, processing, delivery, the relay, pending work and the pool', async () => {
    const tag = uid('obs').replaceAll('-', '_');
    const processor = await call(h, 'POST', '/api/v1/events/processors', {
      processor_name: tag,
      processor_type: 'webhook',
      filters: { event_type: `${tag}.created` },
      config: { url: receiver.url, timeout_ms: 5000 },
    });
    expect(processor.statusCode, processor.body).toBe(201);
    const subscription = await call(h, 'POST', '/api/v1/events/subscriptions', {
      subscriber_name: tag,
      event_types: [`${tag}.created`],
      callback_url: receiver.url,
    });
    expect(subscription.statusCode, subscription.body).toBe(201);

    const created = await call(h, 'POST', '/api/v1/events/create', { event_type: `${tag}.created` });
    expect(created.statusCode, created.body).toBe(201);
    const eventId = created.json<{ event_id: string }>().event_id;
    const batch = await call(h, 'POST', '/api/v1/events/batch', [
      { event_type: `${tag}.batched`, event_source: 'system' },
      { event_type: `${tag}.batched`, event_source: 'system' },
    ]);
    expect(batch.statusCode, batch.body).toBe(201);
    const frontend = await call(h, 'POST', '/api/v1/events/frontend', { event_type: `${tag}_page` });
    expect(frontend.statusCode, frontend.body).toBe(200);
    const rudder = await call(h, 'POST', '/webhooks/rudderstack', {
      type: 'track',
      event: `${tag}_rudder`,
      userId: 'u1',
      messageId: uid('m'),
    });
    expect(rudder.statusCode, rudder.body).toBe(200);
    const tracked = await call(h, 'POST', '/v1/track', {
      writeKey: WRITE_KEY,
      event: `${tag}_tracked`,
      userId: 'u2',
    });
    expect(tracked.statusCode, tracked.body).toBe(200);
    // An idempotent repeat is not counted again.
    const repeat = await call(h, 'POST', '/api/v1/events/create', {
      event_type: `${tag}.once`,
      idempotency_key: tag,
    });
    const again = await call(h, 'POST', '/api/v1/events/create', {
      event_type: `${tag}.once`,
      idempotency_key: tag,
    });
    expect([repeat.statusCode, again.statusCode]).toEqual([201, 201]);
    // Backend services over NATS (here the in-process bus), once the consumer has made its stream.
    await waitFor('the backend ingest stream', async () => {
      await h.bus.publish(
        `events.backend.billing.${tag}_paid`,
        encodeJson({ type: `${tag}_paid`, id: uid('n') }),
      );
      return true;
    });
    expect((await call(h, 'GET', `/api/v1/events/${eventId}`)).statusCode).toBe(200);
    expect((await call(h, 'GET', '/api/v1/events/no-such-event')).statusCode).toBe(404);
    expect((await call(h, 'GET', '/no/such/route')).statusCode).toBe(404);

    await waitFor('the webhook processor run and the delivery', () =>
      receiver.requests.length >= 2 ? true : undefined,
    );
    const samples = await waitFor('the work to settle', async () => {
      const s = await scrape(h);
      const settled =
        valueOf(s, 'event_service_processing_queue_events') === 0 &&
        valueOf(s, 'event_service_webhook_deliveries_pending') === 0 &&
        valueOf(s, 'event_service_follower_lag_events', { follower: 'relay_events' }) === 0 &&
        valueOf(s, 'event_service_follower_lag_events', { follower: 'delivery_fanout' }) === 0 &&
        valueOf(s, 'event_service_follower_lag_events', { follower: 'projections' }) === 0 &&
        valueOf(s, 'event_service_events_ingested_total', { channel: 'nats_backend' }) === 1 &&
        valueOf(s, 'event_service_processing_events_total', { outcome: 'processed' }) === 8 &&
        valueOf(s, 'event_service_relay_published_total', { source: 'events' }) === 8 &&
        (valueOf(s, 'event_service_relay_published_total', { source: 'outbox' }) ?? 0) >= 2;
      return settled ? s : undefined;
    });

    // Requests: by route pattern and status code, never the raw URL.
    const requests = (labels: Record<string, string>) =>
      valueOf(samples, 'event_service_http_request_duration_seconds_count', labels);
    expect(requests({ method: 'POST', route: '/api/v1/events/create', status_code: '201' })).toBe(3);
    expect(requests({ method: 'GET', route: '/api/v1/events/:event_id', status_code: '200' })).toBe(1);
    expect(requests({ method: 'GET', route: '/api/v1/events/:event_id', status_code: '404' })).toBe(1);
    expect(requests({ method: 'GET', route: 'unmatched', status_code: '404' })).toBe(1);
    expect(samples.some((s) => s.labels.route?.includes(eventId))).toBe(false);
    expect(
      valueOf(samples, 'event_service_http_request_duration_seconds_bucket', {
        method: 'POST',
        route: '/api/v1/events/create',
        status_code: '201',
        le: '+Inf',
      }),
    ).toBe(3);

    // Events stored, by channel and source; the repeat is not counted.
    const ingested = (channel: string, source: string) =>
      valueOf(samples, 'event_service_events_ingested_total', { channel, source });
    expect(ingested('api', 'backend')).toBe(2);
    expect(ingested('api', 'system')).toBe(2);
    expect(ingested('frontend', 'frontend')).toBe(1);
    expect(ingested('rudderstack', 'frontend')).toBe(1);
    expect(ingested('tracking', 'frontend')).toBe(1);
    expect(ingested('nats_backend', 'backend')).toBe(1);
    expect(valueOf(samples, 'event_service_append_group_events_sum')).toBeGreaterThanOrEqual(8);

    // Processing and delivery.
    expect(
      valueOf(samples, 'event_service_processor_runs_total', {
        processor_type: 'webhook',
        outcome: 'success',
      }),
    ).toBe(1);
    expect(
      valueOf(samples, 'event_service_processor_run_duration_seconds_count', {
        processor_type: 'webhook',
        outcome: 'success',
      }),
    ).toBe(1);
    expect(valueOf(samples, 'event_service_processing_events_total', { outcome: 'processed' })).toBe(8);
    expect(valueOf(samples, 'event_service_webhook_delivery_attempts_total', { outcome: 'delivered' })).toBe(
      1,
    );
    expect(
      valueOf(samples, 'event_service_webhook_delivery_duration_seconds_count', { outcome: 'delivered' }),
    ).toBe(1);

    // The relay and the followers.
    expect(valueOf(samples, 'event_service_relay_leader')).toBe(1);
    expect(valueOf(samples, 'event_service_relay_published_total', { source: 'events' })).toBe(8);
    expect(valueOf(samples, 'event_service_relay_lag_seconds_count', { source: 'events' })).toBe(8);
    expect(
      valueOf(samples, 'event_service_relay_published_total', { source: 'outbox' }),
    ).toBeGreaterThanOrEqual(2);
    expect(valueOf(samples, 'event_service_log_head_position', { log: 'events' })).toBe(8);
    expect(valueOf(samples, 'event_service_follower_lag_events', { follower: 'delivery_fanout' })).toBe(0);
    expect(valueOf(samples, 'event_service_follower_lag_events', { follower: 'projections' })).toBe(0);
    expect(valueOf(samples, 'event_service_processing_dead_letters')).toBe(0);
    expect(valueOf(samples, 'event_service_ingest_dead_letters')).toBe(0);
    expect(valueOf(samples, 'event_service_replays', { status: 'running' })).toBe(0);
    expect(valueOf(samples, 'event_service_store_state_up')).toBe(1);

    // The pool and the process.
    expect(valueOf(samples, 'event_service_db_pool_max_connections')).toBe(10);
    expect(valueOf(samples, 'event_service_db_pool_connections', { state: 'total' })).toBeGreaterThan(0);
    expect(valueOf(samples, 'event_service_db_pool_waiting_requests')).toBe(0);
    expect(valueOf(samples, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
  });

  it('counts pending work while it waits', async () => {
    const tag = uid('obs').replaceAll('-', '_');
    const dead = await startReceiver(() => ({ status: 503 }));
    try {
      const subscription = await call(h, 'POST', '/api/v1/events/subscriptions', {
        subscriber_name: tag,
        event_types: [`${tag}.waiting`],
        callback_url: dead.url,
        retry_policy: { max_retries: 5, backoff_seconds: [60] },
      });
      expect(subscription.statusCode, subscription.body).toBe(201);
      expect(
        (await call(h, 'POST', '/api/v1/events/create', { event_type: `${tag}.waiting` })).statusCode,
      ).toBe(201);
      await waitFor('a pending delivery', async () =>
        valueOf(await scrape(h), 'event_service_webhook_deliveries_pending') === 1 ? true : undefined,
      );
      const samples = await waitFor('the retry outcome', async () => {
        const s = await scrape(h);
        return valueOf(s, 'event_service_webhook_delivery_attempts_total', { outcome: 'retry' }) === 1
          ? s
          : undefined;
      });
      expect(valueOf(samples, 'event_service_webhook_deliveries_pending')).toBe(1);
    } finally {
      await dead.close();
    }
  });

  it('honours a sane X-Request-Id, echoes it, and logs request and correlation ids', async () => {
    const res = await call(h, 'GET', '/health', undefined, {
      'x-request-id': 'req-from-gateway-1',
      'x-correlation-id': 'order-77',
    });
    expect(res.headers['x-request-id']).toBe('req-from-gateway-1');
    const completed = h.logs.filter((l) => l.request_id === 'req-from-gateway-1');
    expect(completed.map((l) => l.msg)).toEqual(['incoming request', 'request completed']);
    expect(completed.every((l) => l.correlation_id === 'order-77')).toBe(true);

    const tooLong = await call(h, 'GET', '/health', undefined, { 'x-request-id': 'x'.repeat(129) });
    const generated = tooLong.headers['x-request-id'] as string;
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    expect(h.logs.some((l) => l.request_id === generated)).toBe(true);

    // Without the header, the body's correlation_id; errors carry the request id too.
    const created = await call(h, 'POST', '/api/v1/events/create', {
      event_type: uid('obs.corr'),
      correlation_id: 'checkout-9',
    });
    const id = created.headers['x-request-id'] as string;
    expect(h.logs.find((l) => l.request_id === id && l.msg === 'request completed')).toMatchObject({
      correlation_id: 'checkout-9',
    });
    const refused = await call(
      h,
      'POST',
      '/api/v1/events/create',
      { nope: true },
      { 'x-request-id': 'bad-1' },
    );
    expect(refused.statusCode).toBe(422);
    expect(refused.headers['x-request-id']).toBe('bad-1');
  });

  it('carries a traceparent into the event, the event.stored message, processor calls and webhook deliveries', async () => {
    const tag = uid('obs').replaceAll('-', '_');
    const processorCalls = await startReceiver();
    const deliveries = await startReceiver();
    try {
      const processor = await call(h, 'POST', '/api/v1/events/processors', {
        processor_name: tag,
        processor_type: 'webhook',
        filters: { event_type: `${tag}.traced` },
        config: { url: processorCalls.url, timeout_ms: 5000 },
      });
      expect(processor.statusCode, processor.body).toBe(201);
      const subscription = await call(h, 'POST', '/api/v1/events/subscriptions', {
        subscriber_name: tag,
        event_types: [`${tag}.traced`],
        callback_url: deliveries.url,
      });
      expect(subscription.statusCode, subscription.body).toBe(201);

      const traced = await call(
        h,
        'POST',
        '/api/v1/events/create',
        { event_type: `${tag}.traced`, metadata: { origin: 'checkout' } },
        { traceparent: TRACEPARENT, tracestate: TRACESTATE },
      );
      expect(traced.statusCode, traced.body).toBe(201);
      const event = traced.json<{ event_id: string; metadata: Record<string, unknown> }>();
      expect(event.metadata).toEqual({
        origin: 'checkout',
        traceparent: TRACEPARENT,
        tracestate: TRACESTATE,
      });

      // The client's own traceparent wins; no traceparent in, none invented.
      const own = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const mine = await call(
        h,
        'POST',
        '/api/v1/events/create',
        { event_type: `${tag}.other`, metadata: { traceparent: own } },
        { traceparent: TRACEPARENT },
      );
      expect(mine.json<{ metadata: Record<string, unknown> }>().metadata).toEqual({ traceparent: own });
      const plain = await call(h, 'POST', '/api/v1/events/create', { event_type: `${tag}.other` });
      expect(plain.json<{ metadata: Record<string, unknown> }>().metadata).toEqual({});
      const invalid = await call(
        h,
        'POST',
        '/api/v1/events/create',
        { event_type: `${tag}.other` },
        {
          traceparent: TRACEPARENT.toUpperCase(),
        },
      );
      expect(invalid.json<{ metadata: Record<string, unknown> }>().metadata).toEqual({});
      // A batch: every event of the request.
      const batch = await call(
        h,
        'POST',
        '/api/v1/events/batch',
        [{ event_type: `${tag}.other` }, { event_type: `${tag}.other` }],
        {
          traceparent: TRACEPARENT,
        },
      );
      expect(
        batch.json<{ metadata: Record<string, unknown> }[]>().map((e) => e.metadata.traceparent),
      ).toEqual([TRACEPARENT, TRACEPARENT]);

      const stored = await waitFor('the event.stored message', () =>
        h.bus
          .streamMessages(EVENT_STREAM)
          .find(
            (m) =>
              m.subject === LifecycleSubject.STORED &&
              (JSON.parse(new TextDecoder().decode(m.data)) as { id: string }).id === event.event_id,
          ),
      );
      expect(stored.headers).toMatchObject({ traceparent: TRACEPARENT, tracestate: TRACESTATE });
      const untraced = await waitFor('the untraced event.stored message', () =>
        h.bus
          .streamMessages(EVENT_STREAM)
          .find(
            (m) =>
              m.subject === LifecycleSubject.STORED &&
              (JSON.parse(new TextDecoder().decode(m.data)) as { id: string }).id ===
                plain.json<{ event_id: string }>().event_id,
          ),
      );
      expect(untraced.headers.traceparent).toBeUndefined();

      const call1 = await waitFor('the processor call', () => processorCalls.requests[0]);
      expect(call1.headers).toMatchObject({ traceparent: TRACEPARENT, tracestate: TRACESTATE });
      const delivery = await waitFor('the delivery', () => deliveries.requests[0]);
      expect(delivery.headers).toMatchObject({ traceparent: TRACEPARENT, tracestate: TRACESTATE });
    } finally {
      await processorCalls.close();
      await deliveries.close();
    }
  });

  it('carries a traceparent from NATS message headers into the stored event', async () => {
    const tag = uid('obs').replaceAll('-', '_');
    const id = uid('nats');
    await h.bus.publish(`events.backend.billing.${tag}`, encodeJson({ type: tag, id }), {
      headers: { traceparent: TRACEPARENT },
    });
    const found = await waitFor('the event from NATS', async () => {
      const res = await call(h, 'POST', '/api/v1/events/query', { event_type: tag });
      const events = res.json<{ events: { metadata: Record<string, unknown> }[] }>().events;
      return events[0];
    });
    expect(found.metadata.traceparent).toBe(TRACEPARENT);
  });
});

describe('observability on pglite', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await start('pglite');
  });
  afterAll(async () => {
    await h?.close();
  });

  it('reports the same metrics, without a connection pool', async () => {
    const created = await call(h, 'POST', '/api/v1/events/create', { event_type: 'obs.pglite' });
    expect(created.statusCode, created.body).toBe(201);
    const samples = await waitFor('the event to be processed and relayed', async () => {
      const s = await scrape(h);
      return valueOf(s, 'event_service_processing_queue_events') === 0 &&
        valueOf(s, 'event_service_follower_lag_events', { follower: 'relay_events' }) === 0
        ? s
        : undefined;
    });
    expect(
      valueOf(samples, 'event_service_events_ingested_total', { channel: 'api', source: 'backend' }),
    ).toBe(1);
    expect(valueOf(samples, 'event_service_log_head_position', { log: 'events' })).toBe(1);
    expect(valueOf(samples, 'event_service_store_state_up')).toBe(1);
    expect(samples.some((s) => s.name.startsWith('event_service_db_pool_'))).toBe(false);
  });
});
