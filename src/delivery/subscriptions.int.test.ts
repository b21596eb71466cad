/**
 * The subscription endpoints over a real database, on both stores: create (secret shown once,
 * announced through the outbox), list, get, update, enable/disable, delete; 404, 409, and 422 for
 * bad filters, bad secrets and callback URLs the SSRF guard refuses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_KINDS, startTestApp, type TestApp } from '../test-support/app.js';
import { get, post, uid, validationPaths, type ErrorJson } from '../test-support/http.js';

interface SubscriptionJson {
  subscription_id: string;
  subscriber_name: string;
  subscriber_type: string;
  description: string | null;
  event_types: string[];
  event_sources: string[] | null;
  event_categories: string[] | null;
  callback_url: string;
  enabled: boolean;
  retry_policy: { max_retries?: number; backoff_seconds?: number[] };
  disabled_reason: string | null;
  webhook_secret?: string;
  start_position: number;
  created_at: string;
}

const put = (t: TestApp, url: string, payload: unknown) =>
  t.app.http.inject({
    method: 'PUT',
    url,
    payload: JSON.stringify(payload),
    headers: { 'content-type': 'application/json' },
  });
const del = (t: TestApp, url: string) => t.app.http.inject({ method: 'DELETE', url });

const BASE = '/api/v1/events/subscriptions';

describe.each(STORE_KINDS)('subscriptions on %s', (kind) => {
  let t: TestApp;
  let open: TestApp;
  beforeAll(async () => {
    // The default: private networks refused. A second app allows them (local receivers).
    t = await startTestApp(kind);
    open = await startTestApp(kind, { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' });
  });
  afterAll(async () => {
    await t?.close();
    await open?.close();
  });

  const create = async (app: TestApp, body: Record<string, unknown> = {}) => {
    const res = await post(app, BASE, {
      subscriber_name: uid('sub'),
      event_types: ['user.*'],
      callback_url: 'http://127.0.0.1:9/hook',
      ...body,
    });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<SubscriptionJson>();
  };

  it('creates a subscription with the seed fields and shows the generated secret once', async () => {
    const name = uid('analytics');
    const created = await create(open, {
      subscriber_name: name,
      subscriber_type: 'service',
      event_types: ['user.*', 'payment.>'],
      event_sources: ['backend', 'frontend'],
      event_categories: ['user_lifecycle', 'payment'],
      retry_policy: { max_retries: 3, backoff_seconds: [1, 5, 30] },
      description: 'analytics',
    });
    expect(created).toMatchObject({
      subscriber_name: name,
      subscriber_type: 'service',
      event_types: ['user.*', 'payment.>'],
      event_sources: ['backend', 'frontend'],
      event_categories: ['user_lifecycle', 'payment'],
      callback_url: 'http://127.0.0.1:9/hook',
      enabled: true,
      retry_policy: { max_retries: 3, backoff_seconds: [1, 5, 30] },
      disabled_reason: null,
      description: 'analytics',
    });
    expect(created.subscription_id).toMatch(/^sub_/);
    expect(created.webhook_secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);

    const one = await get(open, `${BASE}/${created.subscription_id}`);
    expect(one.statusCode).toBe(200);
    expect(one.json()).not.toHaveProperty('webhook_secret');
    expect(one.json()).toMatchObject({ subscription_id: created.subscription_id, subscriber_name: name });
    const list = await get(open, BASE);
    expect(list.statusCode).toBe(200);
    const listed = list.json<SubscriptionJson[]>();
    expect(listed.map((s) => s.subscription_id)).toContain(created.subscription_id);
    for (const s of listed) expect(s).not.toHaveProperty('webhook_secret');
    expect(list.body).not.toContain(created.webhook_secret!.slice(6));

    // Announced in the creating transaction.
    const outbox = await open.db.query<{
      subject: string;
      payload: { type: string; data: Record<string, unknown> };
    }>('SELECT subject, payload FROM event.outbox WHERE msg_id = $1', [
      `subscription-created-${created.subscription_id}`,
    ]);
    expect(outbox.rows).toHaveLength(1);
    expect(outbox.rows[0]!.subject).toBe('event.subscription.created');
    expect(outbox.rows[0]!.payload).toMatchObject({
      type: 'event.subscription.created',
      source: 'event_service',
      data: { subscription_id: created.subscription_id, subscriber_name: name, enabled: true },
    });
    expect(JSON.stringify(outbox.rows[0]!.payload)).not.toContain('whsec_');
  });

  it('keeps a given secret, defaults subscriber_type, treats empty source lists as any', async () => {
    const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    const created = await create(open, { webhook_secret: secret, event_sources: [], event_categories: null });
    expect(created.webhook_secret).toBe(secret);
    expect(created.subscriber_type).toBe('webhook');
    expect(created.event_sources).toBeNull();
    expect(created.event_categories).toBeNull();
    expect(created.retry_policy).toEqual({});
  });

  it('answers 409 for a name that is taken, on create and on update', async () => {
    const first = await create(open);
    const again = await post(open, BASE, {
      subscriber_name: first.subscriber_name,
      event_types: ['x'],
      callback_url: 'http://127.0.0.1:9/',
    });
    expect(again.statusCode).toBe(409);
    expect(again.json<ErrorJson>()).toMatchObject({ code: 'conflict' });
    const second = await create(open);
    const rename = await put(open, `${BASE}/${second.subscription_id}`, {
      subscriber_name: first.subscriber_name,
    });
    expect(rename.statusCode).toBe(409);
  });

  it('answers 404 for unknown ids everywhere', async () => {
    const id = 'sub_unknown';
    expect((await get(t, `${BASE}/${id}`)).statusCode).toBe(404);
    expect((await put(t, `${BASE}/${id}`, { description: 'x' })).statusCode).toBe(404);
    expect((await del(t, `${BASE}/${id}`)).statusCode).toBe(404);
    expect((await post(t, `${BASE}/${id}/enable`, {})).statusCode).toBe(404);
    expect((await post(t, `${BASE}/${id}/disable`, {})).statusCode).toBe(404);
    expect((await get(t, `${BASE}/${id}/deliveries`)).statusCode).toBe(404);
    expect((await post(t, `${BASE}/${id}/deliveries/dlv_x/redeliver`, {})).statusCode).toBe(404);
    const res = await get(t, `${BASE}/${id}`);
    expect(res.json<ErrorJson>()).toMatchObject({
      code: 'not_found',
      detail: `Subscription not found: ${id}`,
    });
    const sub = await create(open);
    expect(
      (await post(open, `${BASE}/${sub.subscription_id}/deliveries/dlv_x/redeliver`, {})).statusCode,
    ).toBe(404);
  });

  it('refuses bad filters, secrets and URLs with 422 naming each field', async () => {
    const bad = await post(open, BASE, {
      subscriber_name: uid('bad'),
      event_types: ['user.>.x', 'ok.*', 'user*'],
      callback_url: 'ftp://example.com/hook',
      webhook_secret: 'secret_key',
    });
    expect(validationPaths(bad).sort()).toEqual([
      'body.callback_url',
      'body.event_types[0]',
      'body.event_types[2]',
      'body.webhook_secret',
    ]);
    expect(
      validationPaths(
        await post(open, BASE, { subscriber_name: 'x', event_types: [], callback_url: 'http://a.b/' }),
      ),
    ).toEqual(['body.event_types']);
    expect(
      validationPaths(await post(open, BASE, { subscriber_name: 'x', callback_url: 'http://a.b/' })),
    ).toEqual(['body.event_types']);
    expect(
      validationPaths(
        await post(open, BASE, {
          subscriber_name: 'x',
          event_types: ['a'],
          callback_url: 'http://a.b/',
          event_sources: ['mars'],
          retry_policy: { max_retries: -1 },
        }),
      ).sort(),
    ).toEqual(['body.event_sources[0]', 'body.retry_policy.max_retries']);
    const sub = await create(open);
    expect(validationPaths(await put(open, `${BASE}/${sub.subscription_id}`, {}))).toEqual(['body']);
    expect(
      validationPaths(await put(open, `${BASE}/${sub.subscription_id}`, { event_types: ['a..b'] })),
    ).toEqual(['body.event_types[0]']);
  });

  it('refuses loopback, localhost, link-local and private callback URLs unless allowed', async () => {
    for (const url of [
      'http://127.0.0.1:8080/hook',
      'http://localhost/hook',
      'http://169.254.169.254/latest/meta-data/',
      'http://[::1]/hook',
      'https://10.1.2.3/hook',
      'http://192.168.0.10/hook',
    ]) {
      const res = await post(t, BASE, {
        subscriber_name: uid('ssrf'),
        event_types: ['a'],
        callback_url: url,
      });
      expect(res.statusCode, url).toBe(422);
      const body = res.json<ErrorJson>();
      expect(body.errors, url).toEqual([
        { path: 'body.callback_url', message: expect.stringMatching(/loopback, private, link-local/) },
      ]);
    }
    const sub = await create(open);
    const moved = await put(t, `${BASE}/${sub.subscription_id}`, { callback_url: 'http://169.254.169.254/' });
    expect(moved.statusCode).toBe(422);
    // Allowed by configuration.
    expect((await create(open, { callback_url: 'http://localhost:9/hook' })).callback_url).toBe(
      'http://localhost:9/hook',
    );
  });

  it('updates the fields given, keeps the others, never returns a rotated secret', async () => {
    const sub = await create(open, { event_sources: ['backend'], description: 'first' });
    const res = await put(open, `${BASE}/${sub.subscription_id}`, {
      event_types: ['order.created', 'order.created'],
      event_sources: null,
      webhook_secret: `whsec_${Buffer.alloc(24, 1).toString('base64')}`,
      retry_policy: { max_retries: 1 },
    });
    expect(res.statusCode, res.body).toBe(200);
    const updated = res.json<SubscriptionJson>();
    expect(updated).toMatchObject({
      subscriber_name: sub.subscriber_name,
      event_types: ['order.created'],
      event_sources: null,
      description: 'first',
      retry_policy: { max_retries: 1 },
    });
    expect(updated).not.toHaveProperty('webhook_secret');
    const stored = await open.db.query<{ webhook_secret: string }>(
      'SELECT webhook_secret FROM event.event_subscriptions WHERE subscription_id = $1',
      [sub.subscription_id],
    );
    expect(stored.rows[0]!.webhook_secret).toBe(`whsec_${Buffer.alloc(24, 1).toString('base64')}`);
  });

  it('disables and enables, saying why it is disabled', async () => {
    const sub = await create(open);
    const off = await post(open, `${BASE}/${sub.subscription_id}/disable`, {});
    expect(off.statusCode).toBe(200);
    expect(off.json()).toMatchObject({ enabled: false, disabled_reason: 'disabled on request' });
    expect(
      (await get(open, `${BASE}?enabled=false`)).json<SubscriptionJson[]>().map((s) => s.subscription_id),
    ).toContain(sub.subscription_id);
    expect(
      (await get(open, `${BASE}?enabled=true`)).json<SubscriptionJson[]>().map((s) => s.subscription_id),
    ).not.toContain(sub.subscription_id);
    const on = await post(open, `${BASE}/${sub.subscription_id}/enable`, {});
    expect(on.json()).toMatchObject({ enabled: true, disabled_reason: null, disabled_at: null });
    const viaPut = await put(open, `${BASE}/${sub.subscription_id}`, { enabled: false });
    expect(viaPut.json()).toMatchObject({ enabled: false, disabled_reason: 'disabled on request' });
    const created = await create(open, { enabled: false });
    expect(created).toMatchObject({ enabled: false, disabled_reason: 'created disabled' });
  });

  it('deletes: 200 once, then 404, and the name is free again', async () => {
    const sub = await create(open);
    const res = await del(open, `${BASE}/${sub.subscription_id}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      status: 'deleted',
      subscription_id: sub.subscription_id,
      message: 'Subscription deleted',
    });
    expect((await del(open, `${BASE}/${sub.subscription_id}`)).statusCode).toBe(404);
    expect((await get(open, `${BASE}/${sub.subscription_id}`)).statusCode).toBe(404);
    await create(open, { subscriber_name: sub.subscriber_name });
  });

  it('documents the endpoints in OpenAPI', async () => {
    const doc = (await get(t, '/docs/json')).json<{ paths: Record<string, Record<string, unknown>> }>();
    expect(Object.keys(doc.paths[BASE] ?? {}).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths[`${BASE}/{subscription_id}`] ?? {}).sort()).toEqual([
      'delete',
      'get',
      'put',
    ]);
    expect(doc.paths[`${BASE}/{subscription_id}/deliveries`]).toHaveProperty('get');
    expect(doc.paths[`${BASE}/{subscription_id}/deliveries/{delivery_id}/redeliver`]).toHaveProperty('post');
  });
});
