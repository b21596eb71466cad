/**
 * Deliveries to real local HTTP receivers, on both stores, with the workers running as in
 * `main.ts`: signed after Standard Webhooks (verified with the `standardwebhooks` package, as a
 * receiver would), filtered, retried (500, 429 + Retry-After, timeouts), given up on 4xx, logged,
 * redelivered; disable and delete stop delivery at once; failing subscriptions are disabled; a slow
 * endpoint does not hold back another subscription.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { STORE_KINDS, startTestApp, type TestApp } from '../test-support/app.js';
import { uid } from '../test-support/http.js';
import {
  apiOf,
  createEventsVia,
  createEventVia,
  createSubscription,
  getSubscriptionJson,
  listDeliveries,
  SUBSCRIPTIONS,
  type Api,
  type DeliveryJson,
} from '../test-support/subscriptions.js';
import { waitFor, waitUntil } from '../test-support/wait.js';
import {
  startIsolatedReceiver,
  startReceiver,
  type WebhookReceiver,
} from '../test-support/webhook-receiver.js';

const FAST = {
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
  DELIVERY_POLL_MS: '20',
  // Generous: the embedded store runs on this thread and can hold it up under load.
  DELIVERY_TIMEOUT_MS: '2000',
  DELIVERY_LEASE_MS: '6000',
};

interface Payload {
  type: string;
  timestamp: string;
  data: { event_id: string; event_type: string; data: Record<string, unknown>; position: number };
}

describe.each(STORE_KINDS)('webhook delivery on %s', (kind) => {
  let t: TestApp;
  let api: Api;
  const receivers: WebhookReceiver[] = [];
  const receiver = async (...args: Parameters<typeof startReceiver>) => {
    const r = await startReceiver(...args);
    receivers.push(r);
    return r;
  };
  beforeAll(async () => {
    t = await startTestApp(kind, FAST, { workers: true });
    api = apiOf(t);
  });
  afterEach(async () => {
    await Promise.all(receivers.splice(0).map((r) => r.close()));
  });
  afterAll(async () => {
    await t?.close();
  });

  const deliveriesWhen = async (id: string, what: string, check: (list: DeliveryJson[]) => boolean) => {
    let last: DeliveryJson[] = [];
    try {
      return await waitFor(what, async () => {
        last = await listDeliveries(api, id);
        return check(last) ? last : undefined;
      });
    } catch (error) {
      // Say what the deliveries were doing (once seen under heavy CI load: none was settled).
      const states = last.map(
        (d) =>
          `${d.status}/${d.attempts}${d.in_flight ? '/in flight' : ''}` +
          (d.last_error || d.last_response_status
            ? ` (${d.last_response_status ?? ''} ${d.last_error ?? ''})`
            : ''),
      );
      throw new Error(`${(error as Error).message}; deliveries: ${states.join(', ') || 'none'}`, {
        cause: error,
      });
    }
  };

  it('delivers matching events, signed, to a receiver that verifies them', async () => {
    const r = await receiver();
    const tag = uid('t');
    // Stored before the subscription exists: not delivered.
    await createEventVia(api, { event_type: `${tag}.user.created`, data: { before: true } });
    const sub = await createSubscription(api, r.url, {
      event_types: [`${tag}.user.*`, `${tag}.pay.>`],
      event_sources: ['backend', 'frontend'],
    });
    const wanted = [
      await createEventVia(api, { event_type: `${tag}.user.created`, data: { n: 1 } }),
      await createEventVia(api, {
        event_type: `${tag}.pay.card.ok`,
        event_source: 'frontend',
        data: { n: 2 },
      }),
    ];
    await createEventVia(api, { event_type: `${tag}.user.profile.updated` }); // `*` is one token
    await createEventVia(api, { event_type: `${tag}.user.created`, event_source: 'iot_device' }); // source
    await createEventVia(api, { event_type: `${tag}.other` });
    const sentinel = await createEventVia(api, { event_type: `${tag}.user.deleted`, data: { n: 3 } });
    wanted.push(sentinel);

    await waitUntil('three deliveries', () => r.requests.length >= 3);
    const list = await deliveriesWhen(sub.subscription_id, 'all delivered', (l) =>
      l.every((d) => d.status === 'delivered'),
    );
    expect(list.map((d) => d.event_id).sort()).toEqual(wanted.map((e) => e.event_id).sort());
    expect(r.requests).toHaveLength(3);

    for (const request of r.requests) {
      // As a receiver does it: the standardwebhooks package checks id, timestamp and signature.
      const payload = r.verify(request, sub.webhook_secret) as Payload;
      expect(request.headers['webhook-id']).toBe(`msg_${payload.data.event_id}`);
      expect(request.headers['webhook-attempt']).toBe('1');
      expect(request.headers['content-type']).toBe('application/json');
      expect(request.headers['user-agent']).toMatch(/^event-service\/\d/);
      expect(Math.abs(Number(request.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(30);
      expect(payload.type).toBe(payload.data.event_type);
      expect(payload.timestamp).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(payload.data).not.toHaveProperty('status');
      const original = (await api.call('GET', `/api/v1/events/${payload.data.event_id}`)).json as {
        data: unknown;
        position: number;
      };
      expect(payload.data.data).toEqual(original.data);
      expect(payload.data.position).toBe(original.position);
    }
    const first = list.find((d) => d.event_id === sentinel.event_id)!;
    expect(first).toMatchObject({
      status: 'delivered',
      attempts: 1,
      in_flight: false,
      next_attempt_at: null,
      last_response_status: 200,
      last_error: null,
      event_type: `${tag}.user.deleted`,
    });
    expect(first.attempt_log).toEqual([
      expect.objectContaining({ attempt_number: 1, status: 'delivered', response_status: 200, error: null }),
    ]);
    expect(first.attempt_log[0]!.duration_ms).toBeGreaterThanOrEqual(0);
  });

  it('retries 500, 429 (after Retry-After) and timeouts, then delivers; the id stays, the timestamp is fresh', async () => {
    const r = await receiver((req) => {
      if (req.n === 1) return { status: 500, body: 'boom' };
      if (req.n === 2) return { status: 429, headers: { 'retry-after': '1' } };
      if (req.n === 3) return 'hang';
      return { status: 204 };
    });
    const sub = await createSubscription(api, r.url, {
      retry_policy: { max_retries: 5, backoff_seconds: [0.05] },
    });
    const event = await createEventVia(api, { event_type: uid('retry') });
    const [delivery] = await deliveriesWhen(sub.subscription_id, 'delivered after retries', (l) =>
      l.some((d) => d.status === 'delivered'),
    );
    expect(r.requests).toHaveLength(4);
    expect(new Set(r.requests.map((q) => q.headers['webhook-id']))).toEqual(
      new Set([`msg_${event.event_id}`]),
    );
    expect(r.requests.map((q) => q.headers['webhook-attempt'])).toEqual(['1', '2', '3', '4']);
    for (const q of r.requests) r.verify(q, sub.webhook_secret);
    // Retry-After: 1 beats the 50 ms schedule.
    expect(r.requests[2]!.receivedAt - r.requests[1]!.receivedAt).toBeGreaterThanOrEqual(950);
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 4, last_response_status: 204 });
    expect(delivery!.attempt_log.map((a) => [a.attempt_number, a.status, a.response_status])).toEqual([
      [1, 'retry', 500],
      [2, 'retry', 429],
      [3, 'retry', null],
      [4, 'delivered', 204],
    ]);
    const [a1, a2, a3] = delivery!.attempt_log;
    expect(a1).toMatchObject({ error: 'HTTP 500', response_body: 'boom' });
    expect(a1!.next_attempt_at).not.toBeNull();
    expect(a2!.error).toBe('HTTP 429 (Retry-After 1 s)');
    expect(Date.parse(a2!.next_attempt_at!) - Date.parse(a2!.attempted_at)).toBeGreaterThanOrEqual(900);
    expect(a3).toMatchObject({ error: 'no response within 2000 ms', response_status: null });
    expect(a3!.duration_ms).toBeGreaterThanOrEqual(1900);
  });

  it('fails for good on other 4xx; a redelivery tries again with the same id', async () => {
    const r = await receiver(() => ({ status: 410, body: 'gone' }));
    const sub = await createSubscription(api, r.url, { retry_policy: { backoff_seconds: [0.05] } });
    const event = await createEventVia(api, { event_type: uid('gone') });
    const [failed] = await deliveriesWhen(sub.subscription_id, 'failed', (l) =>
      l.some((d) => d.status === 'failed'),
    );
    expect(r.requests).toHaveLength(1);
    expect(failed).toMatchObject({
      status: 'failed',
      attempts: 1,
      next_attempt_at: null,
      last_response_status: 410,
      last_error: 'HTTP 410: not retried (client error)',
    });
    expect(
      (await listDeliveries(api, sub.subscription_id, 'status=failed')).map((d) => d.delivery_id),
    ).toEqual([failed!.delivery_id]);
    expect(await listDeliveries(api, sub.subscription_id, 'status=delivered')).toEqual([]);

    r.respond(() => ({ status: 200 }));
    const redeliver = await api.call(
      'POST',
      `${SUBSCRIPTIONS}/${sub.subscription_id}/deliveries/${failed!.delivery_id}/redeliver`,
    );
    expect(redeliver.status, redeliver.text).toBe(202);
    expect(redeliver.json).toMatchObject({ delivery_id: failed!.delivery_id, status: 'pending' });
    const [done] = await deliveriesWhen(
      sub.subscription_id,
      'redelivered',
      (l) => l[0]?.status === 'delivered',
    );
    expect(r.requests).toHaveLength(2);
    expect(r.requests[1]!.headers['webhook-id']).toBe(`msg_${event.event_id}`);
    expect(r.requests[1]!.headers['webhook-attempt']).toBe('2');
    r.verify(r.requests[1]!, sub.webhook_secret);
    expect(done!.attempt_log.map((a) => a.status)).toEqual(['failed', 'delivered']);
    const unknown = await api.call(
      'POST',
      `${SUBSCRIPTIONS}/${sub.subscription_id}/deliveries/dlv_unknown/redeliver`,
    );
    expect(unknown.status).toBe(404);
  });

  it('gives up after max_retries and says why', async () => {
    const r = await receiver(() => ({ status: 503 }));
    const sub = await createSubscription(api, r.url, {
      retry_policy: { max_retries: 2, backoff_seconds: [0.02] },
    });
    await createEventVia(api, { event_type: uid('dead') });
    const [failed] = await deliveriesWhen(sub.subscription_id, 'failed', (l) =>
      l.some((d) => d.status === 'failed'),
    );
    expect(r.requests).toHaveLength(3);
    expect(failed!.last_error).toBe('HTTP 503; gave up after 3 attempts');
    expect(failed!.attempt_log.map((a) => a.status)).toEqual(['retry', 'retry', 'failed']);
    expect(failed!.attempt_log[2]!.next_attempt_at).toBeNull();
    const state = await getSubscriptionJson(api, sub.subscription_id);
    expect(state).toMatchObject({ enabled: true, disabled_reason: null });
    expect((state as unknown as CreatedSubscriptionState).consecutive_failures).toBe(3);
  });

  it('pages the delivery log, newest event first', async () => {
    const r = await receiver();
    const sub = await createSubscription(api, r.url);
    const ids = await createEventsVia(
      api,
      Array.from({ length: 5 }, (_, i) => ({ event_type: uid('page'), data: { i } })),
    );
    await deliveriesWhen(
      sub.subscription_id,
      'five delivered',
      (l) => l.filter((d) => d.status === 'delivered').length === 5,
    );
    const page = await api.call('GET', `${SUBSCRIPTIONS}/${sub.subscription_id}/deliveries?limit=2&offset=1`);
    expect(page.json).toMatchObject({ total: 5, limit: 2, offset: 1, has_more: true });
    expect((page.json as { deliveries: DeliveryJson[] }).deliveries.map((d) => d.event_id)).toEqual([
      ids[3],
      ids[2],
    ]);
  });

  for (const how of ['disable', 'delete'] as const) {
    it(`${how} stops delivery at once: no request arrives after the 200`, async () => {
      // On a thread of its own, so that an arrival time is when the request reached it.
      const slow = await startIsolatedReceiver({ status: 200, delayMs: 150 });
      const witness = await receiver();
      const tag = uid(how);
      try {
        const sub = await createSubscription(api, slow.url, { event_types: [`${tag}.>`] });
        // Quick retries: on a starved machine an attempt can time out although the witness got
        // it, and the default backoff would leave it pending for minutes. Enough of them to outlast
        // a stall: under full clean-clone CI load on the embedded store, six attempts 50 ms apart
        // all timed out for the last ten events.
        const other = await createSubscription(api, witness.url, {
          event_types: [`${tag}.>`],
          retry_policy: { max_retries: 20, backoff_seconds: [0.05, 0.2, 0.5, 1] },
        });
        await createEventsVia(
          api,
          Array.from({ length: 40 }, (_, i) => ({ event_type: `${tag}.a`, data: { i } })),
        );
        await waitUntil('deliveries in flight', () => slow.arrivals.length >= 3);
        const res =
          how === 'disable'
            ? await api.call('POST', `${SUBSCRIPTIONS}/${sub.subscription_id}/disable`)
            : await api.call('DELETE', `${SUBSCRIPTIONS}/${sub.subscription_id}`);
        const answeredAt = Date.now();
        expect(res.status, res.text).toBe(200);
        // The workers keep running: more events, all delivered to the other subscription.
        await createEventsVia(
          api,
          Array.from({ length: 10 }, (_, i) => ({ event_type: `${tag}.b`, data: { i } })),
        );
        await waitUntil('the other subscription got all 50', () => witness.requests.length >= 50);
        await deliveriesWhen(other.subscription_id, 'witness settled', (l) =>
          l.every((d) => d.status === 'delivered'),
        );
        await slow.settle();
        expect(slow.arrivals.filter((at) => at > answeredAt)).toEqual([]);
        const seen = slow.arrivals.length;
        expect(seen).toBeLessThan(50);
        if (how === 'disable') {
          const left = await listDeliveries(api, sub.subscription_id);
          expect(left.every((d) => !d.in_flight)).toBe(true);
          // What is still pending is not "redelivered": it goes on its own once enabled.
          const pending = left.find((d) => d.status === 'pending');
          if (pending) {
            const redeliver = await api.call(
              'POST',
              `${SUBSCRIPTIONS}/${sub.subscription_id}/deliveries/${pending.delivery_id}/redeliver`,
            );
            expect(redeliver.status).toBe(409);
          }
          // Enabled again, what was pending is delivered.
          await api.call('POST', `${SUBSCRIPTIONS}/${sub.subscription_id}/enable`);
          await deliveriesWhen(
            sub.subscription_id,
            'the rest delivered',
            (l) => l.length >= 40 && l.every((d) => d.status === 'delivered'),
          );
        } else {
          expect((await api.call('GET', `${SUBSCRIPTIONS}/${sub.subscription_id}/deliveries`)).status).toBe(
            404,
          );
          const rows = await t.db.query('SELECT 1 FROM event.webhook_deliveries WHERE subscription_id = $1', [
            sub.subscription_id,
          ]);
          expect(rows.rows).toHaveLength(0);
        }
      } finally {
        await slow.close();
      }
    });
  }
});

describe.each(STORE_KINDS)('webhook delivery limits on %s', (kind) => {
  let t: TestApp;
  let api: Api;
  const receivers: WebhookReceiver[] = [];
  beforeAll(async () => {
    t = await startTestApp(
      kind,
      {
        ...FAST,
        DELIVERY_TIMEOUT_MS: '10000',
        DELIVERY_LEASE_MS: '20000',
        DELIVERY_CONCURRENCY: '8',
        DELIVERY_PER_SUBSCRIPTION_CONCURRENCY: '2',
        DELIVERY_DISABLE_AFTER_MS: '400',
      },
      { workers: true },
    );
    api = apiOf(t);
  });
  afterAll(async () => {
    await Promise.all(receivers.map((r) => r.close()));
    await t?.close();
  });

  it('a slow endpoint holds at most its share of slots; another subscription is not held back', async () => {
    const slow = await startReceiver(() => ({ status: 200, delayMs: 8000 }));
    const fast = await startReceiver();
    receivers.push(slow, fast);
    const tag = uid('slow');
    await createSubscription(api, slow.url, { event_types: [`${tag}.*`] });
    await createSubscription(api, fast.url, { event_types: [`${tag}.*`] });
    await createEventsVia(
      api,
      Array.from({ length: 30 }, (_, i) => ({ event_type: `${tag}.x`, data: { i } })),
    );
    await waitUntil('the fast endpoint got all 30', () => fast.requests.length >= 30, 10_000);
    // All 30 arrived while the slow endpoint's first answers were still outstanding.
    expect(fast.requests[29]!.receivedAt).toBeLessThan(slow.requests[0]!.receivedAt + 8000);
    expect(slow.requests.length).toBeLessThanOrEqual(2);
    expect(slow.maxConcurrent()).toBeLessThanOrEqual(2);
  });

  it('disables a subscription whose deliveries keep failing for the configured time, and says why', async () => {
    const failing = await startReceiver(() => ({ status: 500 }));
    receivers.push(failing);
    const type = uid('fail');
    const sub = await createSubscription(api, failing.url, {
      event_types: [type],
      retry_policy: { max_retries: 50, backoff_seconds: [0.05] },
    });
    await createEventVia(api, { event_type: type });
    const disabled = await waitFor('disabled', async () => {
      const s = (await getSubscriptionJson(api, sub.subscription_id)) as unknown as CreatedSubscriptionState;
      return s.enabled ? undefined : s;
    });
    expect(disabled.disabled_reason).toMatch(
      /^every delivery attempt failed for longer than 400 ms \(since .+Z, \d+ attempts in a row\); the last: HTTP 500$/,
    );
    expect(disabled.failing_since).not.toBeNull();
    expect(disabled.consecutive_failures).toBeGreaterThanOrEqual(2);
    const attempts = failing.requests.length;
    const firstAt = failing.requests[0]!.receivedAt;
    expect(failing.requests[attempts - 1]!.receivedAt - firstAt).toBeGreaterThanOrEqual(350);
    const [delivery] = await listDeliveries(api, sub.subscription_id);
    expect(delivery).toMatchObject({ status: 'pending', in_flight: false });
    // Enabled again: the failure state is reset.
    const on = await api.call('POST', `${SUBSCRIPTIONS}/${sub.subscription_id}/enable`);
    expect(on.json).toMatchObject({
      enabled: true,
      disabled_reason: null,
      failing_since: null,
      consecutive_failures: 0,
    });
    await api.call('POST', `${SUBSCRIPTIONS}/${sub.subscription_id}/disable`);
  });
});

interface CreatedSubscriptionState {
  enabled: boolean;
  disabled_reason: string | null;
  failing_since: string | null;
  consecutive_failures: number;
}
