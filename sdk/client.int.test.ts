/**
 * The SDK against the running service (the real app with its workers on PostgreSQL, listening on
 * a real port): every method, typed errors, and retries that never store anything twice.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_STREAM } from '../src/bus/envelope.js';
import { createMemoryBus } from '../src/bus/memory.js';
import { Receiver } from '../src/test-support/receiver.js';
import { TEST_ADMIN_API_KEY, startTestApp, type TestApp } from '../src/test-support/app.js';
import { uid } from '../src/test-support/http.js';
import { waitFor } from '../src/test-support/wait.js';
import {
  EventServiceClient,
  EventServiceError,
  NetworkError,
  isEventServiceError,
  type EventResponse,
  type ReplayJob,
} from './index.js';

/**
 * A TCP proxy that forwards requests whole but, while `dropResponses` > 0, destroys the
 * connection at the first byte of the answer: the service has acted, the client never hears.
 */
class DropResponseProxy {
  dropResponses = 0;
  dropped = 0;
  connections = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly server = net.createServer((client) => this.forward(client));

  constructor(private readonly targetPort: number) {}

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private forward(client: net.Socket): void {
    this.connections++;
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      if (this.dropResponses > 0) {
        this.dropResponses--;
        this.dropped++;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

let t: TestApp;
let url: string;
let client: EventServiceClient;
let receiver: Receiver;

beforeAll(async () => {
  // As at the service's start-up on NATS: a stream captures the lifecycle and replayed messages.
  const bus = createMemoryBus();
  await bus.ensureStream({ name: EVENT_STREAM, subjects: ['event.>'] });
  t = await startTestApp(
    'postgres',
    {
      ADMIN_API_KEY: TEST_ADMIN_API_KEY,
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
      PROCESSING_POLL_MS: '20',
      DELIVERY_POLL_MS: '20',
      REPLAY_POLL_MS: '20',
    },
    { workers: true, bus },
  );
  await t.app.http.listen({ port: 0, host: '127.0.0.1' });
  url = `http://127.0.0.1:${(t.app.http.server.address() as AddressInfo).port}`;
  client = new EventServiceClient({ baseUrl: url, apiKey: TEST_ADMIN_API_KEY });
  receiver = await Receiver.start((request) => ({ status: request.path === '/fail' ? 400 : 200 }));
});

afterAll(async () => {
  await client?.close();
  await receiver?.close();
  await t?.close();
});

/** Every API route the client has a method for, as the OpenAPI document names them. */
const COVERED = new Set([
  'POST /api/v1/events/create',
  'POST /api/v1/events/batch',
  'GET /api/v1/events/{event_id}',
  'POST /api/v1/events/query',
  'GET /api/v1/events/statistics',
  'GET /api/v1/events/stream/{stream_id}',
  'GET /api/v1/events/streams',
  'GET /api/v1/events/projections/{entity_type}/{entity_id}',
  'POST /api/v1/events/projections',
  'GET /api/v1/events/projections',
  'GET /api/v1/events/projections/{name}',
  'DELETE /api/v1/events/projections/{name}',
  'POST /api/v1/events/projections/{name}/rebuild',
  'POST /api/v1/events/replay',
  'GET /api/v1/events/replay',
  'GET /api/v1/events/replay/{replay_id}',
  'DELETE /api/v1/events/replay/{replay_id}',
  'GET /api/v1/events/replay/{replay_id}/results',
  'POST /api/v1/events/processors',
  'GET /api/v1/events/processors',
  'GET /api/v1/events/processors/{processor_id}',
  'PUT /api/v1/events/processors/{processor_id}',
  'DELETE /api/v1/events/processors/{processor_id}',
  'PUT /api/v1/events/processors/{processor_id}/toggle',
  'GET /api/v1/events/failed',
  'POST /api/v1/events/{event_id}/retry',
  'GET /api/v1/events/{event_id}/results',
  'GET /api/v1/events/subscriptions',
  'POST /api/v1/events/subscriptions',
  'GET /api/v1/events/subscriptions/{subscription_id}',
  'PUT /api/v1/events/subscriptions/{subscription_id}',
  'DELETE /api/v1/events/subscriptions/{subscription_id}',
  'POST /api/v1/events/subscriptions/{subscription_id}/enable',
  'POST /api/v1/events/subscriptions/{subscription_id}/disable',
  'GET /api/v1/events/subscriptions/{subscription_id}/deliveries',
  'POST /api/v1/events/subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver',
  'GET /api/v1/events/dead-letters',
  'POST /api/v1/events/frontend',
  'POST /api/v1/events/frontend/batch',
  'GET /api/v1/events/frontend/health',
  'POST /api/v1/auth/keys',
  'GET /api/v1/auth/keys',
  'DELETE /api/v1/auth/keys/{key_id}',
  'GET /api/v1/auth/whoami',
]);

describe('coverage', () => {
  it('has a method for every /api route of the OpenAPI document', async () => {
    const response = await fetch(`${url}/docs/json`);
    const doc = (await response.json()) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([route, operations]) =>
      Object.keys(operations)
        .filter((method) => ['get', 'post', 'put', 'delete', 'patch'].includes(method))
        .map((method) => `${method.toUpperCase()} ${route}`),
    );
    expect(documented.length).toBeGreaterThan(30);
    // The tracking API (/v1/*) is for Segment and RudderStack SDKs; /health* and the webhook are covered above.
    const missing = documented.filter(
      (route) => route.split(' ')[1]!.startsWith('/api/') && !COVERED.has(route),
    );
    expect(missing).toEqual([]);
  });
});

describe('health', () => {
  it('health, ready, frontendHealth', async () => {
    expect(await client.health()).toMatchObject({ status: 'healthy', service: 'event_service' });
    expect((await client.ready()).status).toMatch(/^(ready|degraded)$/);
    expect(await client.frontendHealth()).toMatchObject({ service: 'frontend-event-collection' });
  });
});

describe('events and streams', () => {
  it('creates, reads, queries, pages, counts', async () => {
    const user = uid('u');
    const entity = uid('o');
    const created = await client.createEvent({
      event_type: 'order.created',
      user_id: user,
      entity_type: 'order',
      entity_id: entity,
      expected_version: 'no_stream',
      data: { total: 42.5 },
    });
    expect(created).toMatchObject({ stream_id: `order:${entity}`, stream_version: 1, user_id: user });
    expect(created.idempotency_key).toMatch(/^[0-9a-f-]{36}$/); // added by the client
    expect(await client.getEvent(created.event_id)).toMatchObject({
      event_id: created.event_id,
      data: { total: 42.5 },
    });

    const batch = await client.createBatch(
      [1, 2, 3].map((n) => ({
        event_type: 'order.updated',
        user_id: user,
        stream_id: `order:${entity}`,
        data: { n },
      })),
    );
    expect(batch.map((e) => e.stream_version)).toEqual([2, 3, 4]);

    const partial = await client.createBatchPartial([
      { event_type: 'order.paid', user_id: user, stream_id: `order:${entity}`, expected_version: 4 },
      { event_type: 'order.paid', user_id: user, stream_id: `order:${entity}`, expected_version: 1 },
    ]);
    expect(partial).toMatchObject({ succeeded: 1, failed: 1 });
    expect(partial.results[0]).toMatchObject({ index: 0, status: 201, event: { stream_version: 5 } });
    expect(partial.results[1]).toMatchObject({ index: 1, status: 409, error: { code: 'version_conflict' } });

    const page = await client.queryEvents({ user_id: user, limit: 2 });
    expect(page).toMatchObject({ total: 5, limit: 2, has_more: true });
    expect(page.next_cursor).not.toBeNull();
    const all: EventResponse[] = [];
    for await (const event of client.queryAll({ user_id: user, pageSize: 2 })) all.push(event);
    expect(all).toHaveLength(5);
    expect(new Set(all.map((e) => e.event_id)).size).toBe(5);

    const stats = await client.getStatistics({ user_id: user });
    expect(stats.total_events).toBe(5);
    expect(stats.events_by_type).toMatchObject({ 'order.created': 1, 'order.updated': 3, 'order.paid': 1 });

    const forward = await client.readStream(`order:${entity}`, { from_version: 2, limit: 2 });
    expect(forward).toMatchObject({ entity_type: 'order', entity_id: entity, version: 5 });
    expect(forward.events.map((e) => e.stream_version)).toEqual([2, 3]);
    const backward = await client.readStream(`order:${entity}`, { direction: 'backward', limit: 2 });
    expect(backward.events.map((e) => e.stream_version)).toEqual([5, 4]);

    const streams = await client.listStreams({ entity_type: 'order', limit: 1000 });
    expect(streams.streams.find((s) => s.entity_id === entity)).toMatchObject({ version: 5 });
  });

  it('raises typed errors: 404, 409 with its fields, 422 with every field', async () => {
    const missing = await client.getEvent(uid('nope')).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(EventServiceError);
    expect(missing).toMatchObject({ status: 404, code: 'not_found', attempts: 1 });
    expect((missing as EventServiceError).detail).toMatch(/^Event not found: /);

    const stream = `order:${uid('o')}`;
    await client.createEvent({ event_type: 'order.created', stream_id: stream });
    const conflict = await client
      .createEvent({ event_type: 'order.created', stream_id: stream, expected_version: 'no_stream' })
      .catch((e: unknown) => e);
    expect(isEventServiceError(conflict, 'version_conflict')).toBe(true);
    expect((conflict as EventServiceError).body).toMatchObject({ actual_version: 1, stream_id: stream });

    const invalid = await client
      .createEvent({ event_type: '', event_source: 'nowhere' as 'backend' })
      .catch((e: unknown) => e);
    expect(invalid).toMatchObject({ status: 422, code: 'validation_failed' });
    expect((invalid as EventServiceError).errors.map((p) => p.path).sort()).toEqual([
      'body.event_source',
      'body.event_type',
    ]);

    await expect(client.readStream(`order:${uid('none')}`)).rejects.toMatchObject({ status: 404 });
  });
});

describe('projections', () => {
  it('default projection (current and as of a version) and the declared projection lifecycle', async () => {
    const cart = uid('c');
    await client.createEvent({
      event_type: 'cart.created',
      entity_type: 'cart',
      entity_id: cart,
      user_id: 'u-1',
    });
    await client.createEvent({
      event_type: 'cart.item_added',
      entity_type: 'cart',
      entity_id: cart,
      data: { sku: 's-1', price: 9.5 },
    });

    const current = await client.getProjection('cart', cart);
    expect(current).toMatchObject({
      projection_name: 'default',
      version: 2,
      state: { 'cart.item_added': { sku: 's-1' } },
    });
    const past = await client.getProjection('cart', cart, { as_of_version: 1 });
    expect(past.version).toBe(1);
    expect(past.state).not.toHaveProperty('cart.item_added');

    const name = uid('cart_summary');
    const definition = await client.registerProjection({
      name,
      entity_type: 'cart',
      initial_state: { count: 0, total: 0 },
      handlers: [
        {
          event_type: 'cart.item_added',
          operations: [
            { op: 'increment', path: 'count' },
            { op: 'increment', path: 'total', from: 'data.price' },
          ],
        },
      ],
    });
    expect(definition).toMatchObject({ name, entity_type: 'cart', generation: 1 });
    expect((await client.listProjections({ entity_type: 'cart' })).map((d) => d.name)).toContain(name);
    expect(await client.getProjectionDefinition(name)).toMatchObject({ name });
    expect(await client.getProjection('cart', cart, { name })).toMatchObject({
      projection_name: name,
      state: { count: 1, total: 9.5 },
    });
    const rebuilt = await client.rebuildProjection(name);
    expect(rebuilt.name).toBe(name);
    expect(await client.deleteProjection(name)).toEqual({ status: 'deleted', name });
    await expect(client.getProjectionDefinition(name)).rejects.toMatchObject({ status: 404 });
  });
});

describe('replay', () => {
  it('dry run, start, progress, list, results, cancel', async () => {
    const stream = `order:${uid('o')}`;
    await client.createBatch([
      { event_type: 'order.created', stream_id: stream },
      { event_type: 'order.paid', stream_id: stream },
    ]);

    const dry = await client.dryRunReplay({ stream_id: stream });
    expect(dry).toMatchObject({ dry_run: true, events_count: 2 });
    expect(dry.events).toHaveLength(2);
    expect(await client.replayEvents({ stream_id: stream, dry_run: true })).toMatchObject({
      events_count: 2,
    });

    const started = await client.startReplay({ stream_id: stream, target_service: 'sdk', reprocess: true });
    expect(started).toMatchObject({
      status: 'replay_started',
      events_count: 2,
      subject: 'event.replayed.sdk',
    });
    const done = await waitFor('the replay to end', async () => {
      const job = await client.getReplay(started.replay_id);
      return ['completed', 'failed', 'cancelled'].includes(job.status) ? job : undefined;
    });
    expect(done).toMatchObject({ status: 'completed', total: 2, replayed: 2 });
    const list = await client.listReplays({ status: 'completed', limit: 1000 });
    expect(list.replays.map((r: ReplayJob) => r.replay_id)).toContain(started.replay_id);
    const results = await client.getReplayResults(started.replay_id);
    expect(results).toMatchObject({ replay_id: started.replay_id });

    // Ended already: cancelling it is a typed 409.
    await expect(client.cancelReplay(started.replay_id)).rejects.toMatchObject({ status: 409 });
    const other = await client.startReplay({ stream_id: stream });
    const cancelled = await client.cancelReplay(other.replay_id).catch((e: unknown) => e);
    if (cancelled instanceof EventServiceError)
      expect(cancelled.status).toBe(409); // it was quicker
    else expect(cancelled).toMatchObject({ replay_id: other.replay_id, status: 'cancelled' });
  });
});

describe('processors', () => {
  it('CRUD, toggle, dead letters, retry, results', async () => {
    const type = `sdk.${uid('fail')}`;
    const processor = await client.createProcessor({
      processor_name: uid('p'),
      processor_type: 'webhook',
      filters: { event_type: type },
      config: { url: receiver.url('/fail') },
    });
    expect(processor).toMatchObject({ processor_type: 'webhook', enabled: true });
    expect((await client.listProcessors()).map((p) => p.processor_id)).toContain(processor.processor_id);
    expect(await client.getProcessor(processor.processor_id)).toMatchObject({
      processor_name: processor.processor_name,
    });
    const updated = await client.updateProcessor(processor.processor_id, {
      processor_name: processor.processor_name,
      processor_type: 'webhook',
      priority: 5,
      filters: { event_type: type },
      config: { url: receiver.url('/fail') },
    });
    expect(updated.priority).toBe(5);
    expect((await client.toggleProcessor(processor.processor_id, false)).enabled).toBe(false);
    expect((await client.toggleProcessor(processor.processor_id)).enabled).toBe(true);

    // The receiver answers 400: a permanent failure, the event becomes a dead letter at once.
    const event = await client.createEvent({ event_type: type });
    await waitFor('the dead letter', async () => {
      const failed = await client.listFailedEvents({ limit: 1000 });
      return failed.events.find((e) => e.event_id === event.event_id);
    });
    const results = await client.getEventResults(event.event_id);
    expect(results.results[0]).toMatchObject({ processor_id: processor.processor_id, status: 'failed' });
    const retried = await client.retryEvent(event.event_id);
    expect(retried).toMatchObject({ status: 'queued', event_id: event.event_id });

    expect(await client.deleteProcessor(processor.processor_id)).toEqual({
      status: 'deleted',
      processor_id: processor.processor_id,
    });
    await expect(client.getProcessor(processor.processor_id)).rejects.toMatchObject({ status: 404 });
  });
});

describe('subscriptions', () => {
  it('CRUD, enable/disable, deliveries, redeliver', async () => {
    const type = `sdk.${uid('sub')}`;
    const created = await client.createSubscription({
      subscriber_name: uid('s'),
      event_types: [type],
      callback_url: receiver.url('/hook'),
    });
    expect(created.webhook_secret).toMatch(/^whsec_/);
    const id = created.subscription_id;
    expect((await client.listSubscriptions({ enabled: true })).map((s) => s.subscription_id)).toContain(id);
    expect(await client.getSubscription(id)).not.toHaveProperty('webhook_secret');
    expect((await client.updateSubscription(id, { description: 'from the SDK' })).description).toBe(
      'from the SDK',
    );
    expect((await client.disableSubscription(id)).enabled).toBe(false);
    expect((await client.enableSubscription(id)).enabled).toBe(true);

    const event = await client.createEvent({ event_type: type });
    const delivered = await waitFor('the delivery', async () => {
      const page = await client.listDeliveries(id, { status: 'delivered' });
      return page.deliveries.find((d) => d.event_id === event.event_id);
    });
    expect(delivered.attempt_log[0]).toMatchObject({ status: 'delivered', response_status: 200 });
    const again = await client.redeliver(id, delivered.delivery_id);
    expect(again).toMatchObject({ delivery_id: delivered.delivery_id, status: 'pending' });

    expect(await client.deleteSubscription(id)).toMatchObject({ status: 'deleted', subscription_id: id });
    await expect(client.getSubscription(id)).rejects.toMatchObject({ status: 404 });
  });
});

describe('ingest channels', () => {
  it('frontend collector (single and batch), RudderStack webhook, dead letters', async () => {
    const one = await client.sendFrontendEvent({
      event_type: 'button_click',
      category: 'click',
      user_id: 'u-f',
    });
    expect(one).toMatchObject({ status: 'accepted' });
    expect(await client.getEvent(one.event_id)).toMatchObject({
      event_source: 'frontend',
      event_category: 'click',
    });

    const batch = await client.sendFrontendBatch(
      [{ event_type: 'page_view', page_url: 'https://example.com/' }, { event_type: 'form_submit' }],
      { app_version: '1.2.3' },
    );
    expect(batch).toMatchObject({ status: 'accepted', count: 2 });
    const stored = await client.getEvent(batch.event_ids[0]!);
    expect(stored.metadata).toMatchObject({ app_version: '1.2.3', page_url: 'https://example.com/' });

    const rudder = await client.sendRudderStack([
      { type: 'track', event: 'Order Completed', userId: 'u-r', properties: { total: 5 } },
      { type: 'page', anonymousId: 'a-1', name: 'Home' },
    ]);
    expect(rudder).toMatchObject({ status: 'accepted', count: 2 });
    expect(await client.getEvent(rudder.event_ids[0]!)).toMatchObject({
      event_type: 'Order Completed',
      user_id: 'u-r',
    });

    const deadLetters = await client.listDeadLetters({ channel: 'nats', limit: 10 });
    expect(deadLetters).toMatchObject({ limit: 10, offset: 0 });
    expect(Array.isArray(deadLetters.items)).toBe(true);
  });
});

describe('authentication', () => {
  it('API keys: create, list, revoke; whoami', async () => {
    expect(await client.whoami()).toMatchObject({ scopes: expect.arrayContaining(['admin']) as unknown });
    const created = await client.createApiKey({ name: uid('k'), scopes: ['events:read'], user_id: 'u-key' });
    expect(created).toMatchObject({
      scopes: ['events:read'],
      user_id: 'u-key',
      key: expect.any(String) as unknown,
    });
    const list = await client.listApiKeys({ limit: 1000 });
    expect(list.keys.map((k) => k.key_id)).toContain(created.key_id);
    expect(list.keys.find((k) => k.key_id === created.key_id)).not.toHaveProperty('key');

    const reader = new EventServiceClient({ baseUrl: url, apiKey: created.key });
    try {
      expect(await reader.whoami()).toMatchObject({ user_id: 'u-key', scopes: ['events:read'] });
      await expect(reader.createEvent({ event_type: 'x' })).rejects.toMatchObject({ status: 403 });
      const revoked = await client.revokeApiKey(created.key_id);
      expect(revoked.revoked_at).not.toBeNull();
      await expect(reader.whoami()).rejects.toMatchObject({ status: 401 });
    } finally {
      await reader.close();
    }
    const anonymous = new EventServiceClient({ baseUrl: url });
    try {
      await expect(anonymous.listApiKeys()).rejects.toMatchObject({ status: 401 });
    } finally {
      await anonymous.close();
    }
  });
});

describe('a retry never stores twice', () => {
  let proxy: DropResponseProxy;
  let proxied: EventServiceClient;
  beforeAll(async () => {
    proxy = new DropResponseProxy(Number(new URL(url).port));
    proxied = new EventServiceClient({
      baseUrl: await proxy.start(),
      apiKey: TEST_ADMIN_API_KEY,
      retry: { maxAttempts: 3, baseDelayMs: 20 },
    });
  });
  afterAll(async () => {
    await proxied?.close();
    await proxy?.close();
  });

  async function storedOfType(type: string): Promise<EventResponse[]> {
    return (await client.queryEvents({ event_type: type })).events;
  }

  it('create: the answer is lost, the retry gets the original event, one event is stored', async () => {
    const type = `sdk.${uid('once')}`;
    const stream = `order:${uid('o')}`;
    proxy.dropResponses = 1;
    const event = await proxied.createEvent({
      event_type: type,
      stream_id: stream,
      expected_version: 'no_stream',
    });
    expect(proxy.dropped).toBe(1);
    const stored = await storedOfType(type);
    expect(stored).toHaveLength(1);
    expect(event.event_id).toBe(stored[0]!.event_id);
    expect(event.stream_version).toBe(1);
  });

  it('atomic and partial batches: each event stored once', async () => {
    const type = `sdk.${uid('batch')}`;
    proxy.dropResponses = 1;
    const events = await proxied.createBatch([{ event_type: type }, { event_type: type }]);
    proxy.dropResponses = 1;
    const partial = await proxied.createBatchPartial([{ event_type: type }]);
    expect(proxy.dropped).toBe(3);
    expect(partial.succeeded).toBe(1);
    const stored = await storedOfType(type);
    expect(stored).toHaveLength(3);
    expect(stored.map((e) => e.event_id).sort()).toEqual(
      [...events.map((e) => e.event_id), partial.results[0]!.event!.event_id].sort(),
    );
  });

  it('frontend event: stored once', async () => {
    const type = `sdk_${uid('fe')}`;
    proxy.dropResponses = 1;
    const accepted = await proxied.sendFrontendEvent({ event_type: type, category: 'click' });
    expect(proxy.dropped).toBe(4);
    const stored = await storedOfType(type);
    expect(stored.map((e) => e.event_id)).toEqual([accepted.event_id]);
  });

  it('without an idempotency key the client does not retry: it reports the lost answer', async () => {
    const raw = new EventServiceClient({
      baseUrl: proxied.baseUrl,
      apiKey: TEST_ADMIN_API_KEY,
      autoIdempotency: false,
    });
    try {
      const type = `sdk.${uid('raw')}`;
      proxy.dropResponses = 1;
      const error = await raw.createEvent({ event_type: type }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NetworkError);
      expect(error).toMatchObject({ requestSent: true, attempts: 1 });
      expect(await storedOfType(type)).toHaveLength(1); // the service acted: the caller must check
    } finally {
      await raw.close();
    }
  });
});
