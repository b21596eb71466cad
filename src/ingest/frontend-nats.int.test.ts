/**
 * The frontend collector with NATS JetStream (a private nats-server per store kind): events are
 * answered once JetStream has them and reach the store through the durable consumer; with NATS
 * killed mid-way requests are still accepted (committed directly), and once it is back nothing is
 * lost and nothing is stored twice.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNatsBus } from '../bus/nats.js';
import { startTestApp, STORE_KINDS, type TestApp } from '../test-support/app.js';
import type { StoreKind } from '../test-support/db.js';
import { get, post, uid, type EventJson } from '../test-support/http.js';
import { PrivateNats } from '../test-support/nats.js';
import { FRONTEND_DURABLE, INGEST_STREAM } from './nats-consumer.js';

const FRONTEND = '/api/v1/events/frontend';

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
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Accepted {
  status: string;
  event_id: string;
  message: string;
}

async function countOfType(t: TestApp, eventType: string): Promise<{ total: number; ids: string[] }> {
  const page = await t.store.queryEvents(
    { event_type: eventType },
    { limit: 1000, offset: 0, includeTotal: false },
  );
  // Counted from the page itself: the page and its total are two reads, not one snapshot.
  expect(page.hasMore).toBe(false);
  return { total: page.events.length, ids: page.events.map((e) => e.event_id) };
}

interface NatsApp {
  nats: PrivateNats;
  t: TestApp;
  jsm: JetStreamManager;
  natsConnected: () => Promise<boolean>;
}

/** An app with a NATS bus on a private nats-server and its workers, for the tests of one describe. */
function natsApp(kind: StoreKind): NatsApp {
  const ctx = {} as NatsApp;
  let nc: NatsConnection | undefined;
  beforeAll(async () => {
    ctx.nats = await PrivateNats.start();
    ctx.t = await startTestApp(
      kind,
      { FRONTEND_RATE_LIMIT_PER_MINUTE: '0' },
      { bus: createNatsBus({ servers: ctx.nats.url }), workers: true },
    );
    nc = await connect({ servers: ctx.nats.url });
    ctx.jsm = await jetstreamManager(nc);
    ctx.natsConnected = async () =>
      (await get(ctx.t, `${FRONTEND}/health`)).json<{ nats_connected: boolean }>().nats_connected;
    await waitFor('NATS connected', ctx.natsConnected);
    await waitFor('the frontend consumer', () =>
      ctx.jsm.consumers.info(INGEST_STREAM, FRONTEND_DURABLE).catch(() => null),
    );
  });
  afterAll(async () => {
    await nc?.close();
    await ctx.t?.close();
    await ctx.nats?.destroy();
  });
  return ctx;
}

describe.each(STORE_KINDS)('frontend collector with NATS (%s)', (kind) => {
  const ctx = natsApp(kind);

  it('answers once JetStream has the event; the consumer stores it within a second', async () => {
    const { t, jsm } = ctx;
    const type = uid('cta_click');
    const res = await post(
      t,
      FRONTEND,
      { event_type: type, category: 'click', page_url: 'https://x.test/p', data: { n: 1 } },
      { 'user-agent': 'UA/1' },
    );
    const answeredAt = Date.now();
    expect(res.statusCode, res.body).toBe(200);
    const { event_id, message } = res.json<Accepted>();
    expect(message).toBe('Event published to stream');
    // in the stream under events.frontend.{category}.{event_type}, with the event id as Nats-Msg-Id
    const stored = await jsm.streams.getMessage(INGEST_STREAM, {
      last_by_subj: `events.frontend.click.${type}`,
    });
    expect(stored?.header.get('Nats-Msg-Id')).toBe(event_id);
    const event = await waitFor('the event in the store', async () => {
      const found = await get(t, `/api/v1/events/${event_id}`);
      return found.statusCode === 200 ? found.json<EventJson>() : null;
    });
    expect(Date.now() - answeredAt).toBeLessThan(1000);
    expect(event).toMatchObject({
      event_id,
      event_type: type,
      event_source: 'frontend',
      event_category: 'click',
      data: { n: 1 },
      metadata: { page_url: 'https://x.test/p', user_agent: 'UA/1', client_ip: '127.0.0.1' },
    });
  });

  it('carries the request traceparent through JetStream into the stored event', async () => {
    const { t, jsm } = ctx;
    const type = uid('traced');
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const res = await post(t, FRONTEND, { event_type: type, category: 'click' }, { traceparent });
    expect(res.statusCode, res.body).toBe(200);
    const { event_id } = res.json<Accepted>();
    const published = await jsm.streams.getMessage(INGEST_STREAM, {
      last_by_subj: `events.frontend.click.${type}`,
    });
    expect(published?.header.get('traceparent')).toBe(traceparent);
    const event = await waitFor('the event in the store', async () => {
      const found = await get(t, `/api/v1/events/${event_id}`);
      return found.statusCode === 200 ? found.json<EventJson>() : null;
    });
    expect(event.metadata).toMatchObject({ traceparent });
  });

  it('publishes a batch and stores each event once', async () => {
    const { t } = ctx;
    const type = uid('batch_view');
    const res = await post(t, `${FRONTEND}/batch`, {
      events: Array.from({ length: 20 }, (_, i) => ({
        event_type: type,
        category: 'page_view',
        data: { i },
      })),
      client_info: { app: 'web' },
    });
    expect(res.statusCode, res.body).toBe(200);
    const { event_ids } = res.json<{ event_ids: string[] }>();
    const found = await waitFor('the batch in the store', async () => {
      const counted = await countOfType(t, type);
      return counted.total === 20 ? counted : null;
    });
    expect(new Set(found.ids)).toEqual(new Set(event_ids));
    const one = (await get(t, `/api/v1/events/${event_ids[0]}`)).json<EventJson>();
    expect(one.metadata).toMatchObject({ app: 'web' });
  });
});

// The store kind does not change this path: once is enough (it may wait out JetStream's ack wait).
describe('frontend collector with NATS killed mid-way (postgres)', () => {
  const ctx = natsApp('postgres');

  it('keeps accepting with NATS killed mid-way; nothing is lost and nothing stored twice', async () => {
    const { t, nats, jsm } = ctx;
    const type = uid('outage');
    const accepted: Accepted[] = [];
    const failures: string[] = [];
    let sent = 0;
    const total = 240;
    let phase: 'before' | 'down' | 'after' = 'before';
    const worker = async () => {
      while (sent < total) {
        const i = sent++;
        const res = await post(t, FRONTEND, { event_type: type, data: { i } });
        if (res.statusCode === 200) accepted.push(res.json<Accepted>());
        else failures.push(`${res.statusCode} ${res.body}`);
        if (phase === 'before' && i >= 80) {
          phase = 'down';
          await nats.stop(true);
        } else if (phase === 'down' && i >= 160) {
          phase = 'after';
          await nats.start();
        }
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    expect(failures).toEqual([]);
    expect(accepted).toHaveLength(total);
    const viaStream = accepted.filter((a) => a.message === 'Event published to stream').length;
    const direct = accepted.filter((a) => a.message === 'Event stored').length;
    expect(viaStream).toBeGreaterThan(0);
    expect(direct).toBeGreaterThan(0);

    await waitFor('NATS connected again', ctx.natsConnected);
    const ids = new Set(accepted.map((a) => a.event_id));
    // an event delivered but unanswered when NATS died comes back after the ack wait (30 s)
    const found = await waitFor(
      'every accepted event in the store',
      async () => {
        const counted = await countOfType(t, type);
        return counted.total >= total ? counted : null;
      },
      45_000,
    );
    expect(found.total).toBe(total);
    expect(new Set(found.ids)).toEqual(ids);
    // and JetStream redelivers nothing that would add to it
    await waitFor(
      'the consumer caught up',
      async () => {
        const info = await jsm.consumers.info(INGEST_STREAM, FRONTEND_DURABLE);
        return info.num_pending === 0 && info.num_ack_pending === 0;
      },
      45_000,
    );
    expect((await countOfType(t, type)).total).toBe(total);
  });
});
