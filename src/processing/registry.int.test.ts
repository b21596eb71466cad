import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_KINDS, startTestApp, type TestApp } from '../test-support/app.js';
import { get, post, uid, validationPaths, type ErrorJson } from '../test-support/http.js';

interface ProcessorJson {
  processor_id: string;
  processor_name: string;
  processor_type: string;
  enabled: boolean;
  priority: number;
  filters: Record<string, unknown>;
  config: Record<string, unknown>;
  error_count: number;
  last_error: string | null;
  last_processed_at: string | null;
  created_at: string;
  updated_at: string;
}

const put = (t: TestApp, url: string, payload?: unknown) =>
  t.app.http.inject({
    method: 'PUT',
    url,
    ...(payload === undefined
      ? {}
      : { payload: JSON.stringify(payload), headers: { 'content-type': 'application/json' } }),
  });
const del = (t: TestApp, url: string) => t.app.http.inject({ method: 'DELETE', url });

const BASE = '/api/v1/events/processors';

describe.each(STORE_KINDS)('processor registry (%s)', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    // The private-network guard stays on: registration must refuse loopback URLs.
    t = await startTestApp(kind);
  });
  afterAll(async () => {
    await t?.close();
  });

  const publishBody = (name = uid('proc')) => ({
    processor_name: name,
    processor_type: 'publish',
    priority: 5,
    filters: { event_type: 'order.*', event_source: 'backend' },
    config: { subject: 'processed.orders' },
  });

  it('creates (201, defaults), gets, lists in run order', async () => {
    const created = await post(t, BASE, publishBody());
    expect(created.statusCode, created.body).toBe(201);
    const processor = created.json<ProcessorJson>();
    expect(processor).toMatchObject({
      processor_type: 'publish',
      enabled: true,
      priority: 5,
      filters: { event_type: 'order.*', event_source: 'backend' },
      config: { subject: 'processed.orders' },
      error_count: 0,
      last_error: null,
      last_processed_at: null,
    });
    expect(processor.processor_id).toMatch(/^[0-9a-f-]{36}$/);

    const minimal = await post(t, BASE, {
      processor_name: uid('minimal'),
      processor_type: 'publish',
      config: { subject: 'x.y' },
    });
    expect(minimal.statusCode, minimal.body).toBe(201);
    expect(minimal.json<ProcessorJson>()).toMatchObject({ enabled: true, priority: 0, filters: {} });

    const fetched = await get(t, `${BASE}/${processor.processor_id}`);
    expect(fetched.statusCode).toBe(200);
    expect(fetched.json()).toEqual(processor);

    const list = await get(t, BASE);
    expect(list.statusCode).toBe(200);
    const names = list.json<ProcessorJson[]>().map((p) => p.processor_name);
    expect(names.indexOf(processor.processor_name)).toBeLessThan(
      names.indexOf(minimal.json<ProcessorJson>().processor_name),
    );
  });

  it('processor_name is unique: 409 on create and on a rename', async () => {
    const body = publishBody();
    expect((await post(t, BASE, body)).statusCode).toBe(201);
    const again = await post(t, BASE, body);
    expect(again.statusCode).toBe(409);
    expect(again.json<ErrorJson>().code).toBe('conflict');

    const other = (await post(t, BASE, publishBody())).json<ProcessorJson>();
    const rename = await put(t, `${BASE}/${other.processor_id}`, {
      ...publishBody(),
      processor_name: body.processor_name,
    });
    expect(rename.statusCode).toBe(409);
  });

  it('updates the whole definition', async () => {
    const created = (await post(t, BASE, publishBody())).json<ProcessorJson>();
    const res = await put(t, `${BASE}/${created.processor_id}`, {
      processor_name: `${created.processor_name}-renamed`,
      processor_type: 'redis_stream',
      enabled: false,
      priority: -3,
      filters: { event_types: ['user.>'] },
      config: { url: 'redis://127.0.0.1:6379', stream: 'events:{event_type}', maxlen: 10 },
    });
    expect(res.statusCode, res.body).toBe(200);
    const updated = res.json<ProcessorJson>();
    expect(updated).toMatchObject({
      processor_id: created.processor_id,
      processor_name: `${created.processor_name}-renamed`,
      processor_type: 'redis_stream',
      enabled: false,
      priority: -3,
      filters: { event_types: ['user.>'] },
      config: { url: 'redis://127.0.0.1:6379', stream: 'events:{event_type}', maxlen: 10 },
      created_at: created.created_at,
    });
    expect(Date.parse(updated.updated_at)).toBeGreaterThanOrEqual(Date.parse(created.updated_at));
  });

  it('toggles: flips without `enabled`, sets it with', async () => {
    const created = (await post(t, BASE, publishBody())).json<ProcessorJson>();
    const url = `${BASE}/${created.processor_id}/toggle`;
    const flipped = await put(t, url);
    expect(flipped.statusCode, flipped.body).toBe(200);
    expect(flipped.json<ProcessorJson>().enabled).toBe(false);
    expect((await put(t, url)).json<ProcessorJson>().enabled).toBe(true);
    expect((await put(t, `${url}?enabled=true`)).json<ProcessorJson>().enabled).toBe(true);
    expect((await put(t, `${url}?enabled=false`)).json<ProcessorJson>().enabled).toBe(false);
    expect((await put(t, `${url}?enabled=false`)).json<ProcessorJson>().enabled).toBe(false);
    expect(validationPaths(await put(t, `${url}?enabled=maybe`))).toEqual(['query.enabled']);
  });

  it('deletes; unknown ids are 404 everywhere', async () => {
    const created = (await post(t, BASE, publishBody())).json<ProcessorJson>();
    const deleted = await del(t, `${BASE}/${created.processor_id}`);
    expect(deleted.statusCode).toBe(200);
    expect(deleted.json()).toEqual({ status: 'deleted', processor_id: created.processor_id });
    for (const res of [
      await get(t, `${BASE}/${created.processor_id}`),
      await del(t, `${BASE}/${created.processor_id}`),
      await put(t, `${BASE}/${created.processor_id}`, publishBody()),
      await put(t, `${BASE}/${created.processor_id}/toggle`),
      await put(t, `${BASE}/nope/toggle?enabled=true`),
    ]) {
      expect(res.statusCode, res.body).toBe(404);
      expect(res.json<ErrorJson>()).toMatchObject({
        code: 'not_found',
        detail: expect.stringContaining('Processor not found'),
      });
    }
  });

  it('422 naming the field: type, filters, and the config of each type', async () => {
    const name = uid('bad');
    expect(
      validationPaths(await post(t, BASE, { processor_name: name, processor_type: 'carrier_pigeon' })),
    ).toEqual(['body.processor_type']);
    expect(
      validationPaths(
        await post(t, BASE, {
          processor_name: name,
          processor_type: 'publish',
          config: { subject: 'a.*' },
          filters: { event_type: 'a..b', event_source: 'mars' },
        }),
      ),
    ).toEqual(['body.filters.event_type', 'body.filters.event_source', 'body.config.subject']);
    expect(
      validationPaths(
        await post(t, BASE, { processor_name: name, processor_type: 'publish', filters: { colour: 'red' } }),
      ),
    ).toEqual(['body.filters.colour']);
    expect(
      validationPaths(
        await post(t, BASE, {
          processor_name: name,
          processor_type: 'redis_stream',
          config: { url: 'http://x', maxlen: 0 },
        }),
      ),
    ).toEqual(['body.config.url', 'body.config.stream', 'body.config.maxlen']);
    expect(
      validationPaths(
        await post(t, BASE, {
          processor_name: name,
          processor_type: 'rabbitmq',
          config: { url: 'amqp://h', exchange: 'x' },
        }),
      ),
    ).toEqual(['body.config.routing_key']);
    expect(
      validationPaths(
        await post(t, BASE, {
          processor_name: name,
          processor_type: 'webhook',
          config: { url: 'https://93.184.215.14/x', timeout_ms: 'soon', headers: { 'content-length': '1' } },
        }),
      ),
    ).toEqual(['body.config.headers.content-length', 'body.config.timeout_ms']);
    expect(
      validationPaths(await post(t, BASE, { processor_type: 'publish', config: { subject: 'a' } })),
    ).toEqual(['body.processor_name']);
    // Nothing was stored by any of them.
    const names = (await get(t, BASE)).json<ProcessorJson[]>().map((p) => p.processor_name);
    expect(names).not.toContain(name);
  });

  it('SSRF: webhook URLs on loopback, private or metadata addresses are refused at registration', async () => {
    for (const url of [
      'http://127.0.0.1:8080/hook',
      'http://localhost/hook',
      'http://10.0.0.7/hook',
      'http://192.168.1.1/hook',
      'http://169.254.169.254/latest/meta-data',
      'http://[::1]/hook',
      'file:///etc/passwd',
    ]) {
      const res = await post(t, BASE, {
        processor_name: uid('ssrf'),
        processor_type: 'webhook',
        config: { url },
      });
      expect(validationPaths(res), url).toEqual(['body.config.url']);
    }
    // Also on update.
    const created = (await post(t, BASE, publishBody())).json<ProcessorJson>();
    const res = await put(t, `${BASE}/${created.processor_id}`, {
      processor_name: created.processor_name,
      processor_type: 'webhook',
      config: { url: 'http://127.0.0.1/x' },
    });
    expect(validationPaths(res)).toEqual(['body.config.url']);
  });
});

describe('processor registry with private networks allowed', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('pglite', { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('the OpenAPI document has every processing route with its schemas', async () => {
    const res = await get(t, '/docs/json');
    expect(res.statusCode).toBe(200);
    const doc = res.json<{
      paths: Record<string, Record<string, { requestBody?: unknown; responses?: Record<string, unknown> }>>;
    }>();
    for (const [method, path, status] of [
      ['post', BASE, '201'],
      ['get', BASE, '200'],
      ['get', `${BASE}/{processor_id}`, '200'],
      ['put', `${BASE}/{processor_id}`, '200'],
      ['delete', `${BASE}/{processor_id}`, '200'],
      ['put', `${BASE}/{processor_id}/toggle`, '200'],
      ['get', '/api/v1/events/failed', '200'],
      ['post', '/api/v1/events/{event_id}/retry', '202'],
      ['get', '/api/v1/events/{event_id}/results', '200'],
    ] as const) {
      const operation = doc.paths[path]?.[method];
      expect(operation, `${method} ${path}`).toBeDefined();
      expect(operation?.responses?.[status], `${method} ${path} ${status}`).toBeDefined();
    }
    expect(doc.paths[BASE]?.post?.requestBody).toBeDefined();
  });

  it('accepts a loopback webhook URL, still refuses other schemes', async () => {
    const ok = await post(t, BASE, {
      processor_name: uid('local'),
      processor_type: 'webhook',
      config: { url: 'http://127.0.0.1:9/hook' },
    });
    expect(ok.statusCode, ok.body).toBe(201);
    const bad = await post(t, BASE, {
      processor_name: uid('local'),
      processor_type: 'webhook',
      config: { url: 'gopher://127.0.0.1/' },
    });
    expect(validationPaths(bad)).toEqual(['body.config.url']);
  });
});
