/**
 * Failures: retries with backoff, then a dead letter listed at /failed, retried on demand; a
 * permanent failure is a dead letter at once; a success is never run again on a retry; a slow
 * receiver is cut off by the timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_KINDS, startTestApp, type TestApp } from '../test-support/app.js';
import { createEvent, get, post, uid, type ErrorJson, type EventJson } from '../test-support/http.js';
import { Receiver } from '../test-support/receiver.js';
import { waitFor } from '../test-support/wait.js';
import { expectRollupsConsistent, registerProcessor, results, settled } from '../test-support/processing.js';

describe.each(STORE_KINDS)('retries and dead letters (%s)', (kind) => {
  let t: TestApp;
  let receiver: Receiver;
  /** Answers per path: a list of statuses used in turn, the last one repeated. */
  const plan = new Map<string, number[]>();
  const delays = new Map<string, number>();

  beforeAll(async () => {
    receiver = await Receiver.start((request) => {
      const statuses = plan.get(request.path) ?? [200];
      const status = statuses.length > 1 ? statuses.shift()! : statuses[0]!;
      return { status, delayMs: delays.get(request.path) };
    });
    t = await startTestApp(
      kind,
      {
        WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
        PROCESSING_POLL_MS: '20',
        PROCESSING_MAX_RETRIES: '2',
        PROCESSING_RETRY_BASE_MS: '40',
        PROCESSING_RETRY_MAX_MS: '200',
      },
      { workers: true },
    );
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  const webhook = (tag: string, path = `/${tag}`, extra: Record<string, unknown> = {}) =>
    registerProcessor(t, {
      processor_name: `${tag}${path.replace(/\//g, '-')}`,
      processor_type: 'webhook',
      filters: { event_type: tag },
      config: { url: receiver.url(path), ...extra },
    });
  const calls = (path: string) => receiver.requests.filter((r) => r.path === path);

  it('retries with growing delays, then a dead letter; listed; retried on demand; then processed', async () => {
    const tag = uid('dl');
    plan.set(`/${tag}`, [503]);
    const processor = await webhook(tag);
    const event = await createEvent(t, { event_type: tag });
    const dead = await settled(t, event.event_id);
    expect(dead).toMatchObject({ status: 'failed', retry_count: 2, processors: [] });
    expect(dead.error_message).toBe(`${tag}-${tag}: HTTP 503`);
    // The first attempt and two retries, each after a backoff.
    const attempts = calls(`/${tag}`);
    expect(attempts).toHaveLength(3);
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(20);
    expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(40);
    expect((await results(t, event.event_id)).map((r) => [r.status, r.attempt, r.message])).toEqual([
      ['retry', 1, 'HTTP 503'],
      ['retry', 2, 'HTTP 503'],
      ['failed', 3, 'HTTP 503'],
    ]);
    const processorNow = (await get(t, `/api/v1/events/processors/${processor.processor_id}`)).json<{
      error_count: number;
      last_error: string;
    }>();
    expect(processorNow).toMatchObject({ error_count: 3, last_error: 'HTTP 503' });

    // Listed as a dead letter, paged.
    const failed = await get(t, '/api/v1/events/failed?limit=1000');
    expect(failed.statusCode).toBe(200);
    const page = failed.json<{ events: EventJson[]; total: number; has_more: boolean }>();
    expect(page.events.map((e) => e.event_id)).toContain(event.event_id);
    expect(page.total).toBeGreaterThanOrEqual(1);
    const outbox = await t.db.query<{ payload: { data: { will_retry: boolean; status: string } } }>(
      `SELECT payload FROM event.outbox WHERE subject = 'event.processed.failed' AND payload->'data'->>'event_id' = $1 ORDER BY position`,
      [event.event_id],
    );
    expect(outbox.rows.map((r) => [r.payload.data.will_retry, r.payload.data.status])).toEqual([
      [true, 'pending'],
      [true, 'pending'],
      [false, 'failed'],
    ]);

    // The receiver is fixed; an operator retries.
    plan.set(`/${tag}`, [200]);
    const retried = await post(t, `/api/v1/events/${event.event_id}/retry`, {});
    expect(retried.statusCode, retried.body).toBe(202);
    expect(retried.json()).toMatchObject({
      status: 'queued',
      event_id: event.event_id,
      event: { status: 'pending', retry_count: 0 },
    });
    const processed = await settled(t, event.event_id);
    expect(processed).toMatchObject({
      status: 'processed',
      processors: [`${tag}-${tag}`],
      error_message: null,
    });
    expect(calls(`/${tag}`)).toHaveLength(4);
    expect((await results(t, event.event_id)).map((r) => r.status)).toEqual([
      'retry',
      'retry',
      'failed',
      'success',
    ]);
    const after = (await get(t, '/api/v1/events/failed?limit=1000')).json<{ events: EventJson[] }>();
    expect(after.events.map((e) => e.event_id)).not.toContain(event.event_id);

    // Only failed events can be retried.
    const again = await post(t, `/api/v1/events/${event.event_id}/retry`, {});
    expect(again.statusCode).toBe(409);
    expect(again.json<ErrorJson>().code).toBe('conflict');
    expect((await post(t, `/api/v1/events/${uid('nope')}/retry`, {})).statusCode).toBe(404);
    expect((await get(t, `/api/v1/events/${uid('nope')}/results`)).statusCode).toBe(404);
    await expectRollupsConsistent(t);
  });

  it('a permanent failure (4xx) is a dead letter at once', async () => {
    const tag = uid('perm');
    plan.set(`/${tag}`, [404]);
    await webhook(tag);
    const event = await createEvent(t, { event_type: tag });
    expect(await settled(t, event.event_id)).toMatchObject({ status: 'failed', retry_count: 0 });
    expect(calls(`/${tag}`)).toHaveLength(1);
    expect((await results(t, event.event_id)).map((r) => [r.status, r.message])).toEqual([
      ['failed', 'HTTP 404'],
    ]);
  });

  it('a retry does not run again what already succeeded (skipped)', async () => {
    const tag = uid('skip');
    plan.set(`/${tag}/ok`, [200]);
    plan.set(`/${tag}/flaky`, [500, 500, 200]);
    await webhook(tag, `/${tag}/ok`);
    await webhook(tag, `/${tag}/flaky`);
    const event = await createEvent(t, { event_type: tag });
    const done = await settled(t, event.event_id);
    expect(done.status).toBe('processed');
    expect(done.processors.sort()).toEqual([`${tag}-${tag}-flaky`, `${tag}-${tag}-ok`].sort());
    expect(calls(`/${tag}/ok`)).toHaveLength(1);
    expect(calls(`/${tag}/flaky`)).toHaveLength(3);
    const rows = await results(t, event.event_id);
    expect(rows.filter((r) => r.processor_name.endsWith('-ok')).map((r) => r.status)).toEqual([
      'success',
      'skipped',
      'skipped',
    ]);
    expect(rows.filter((r) => r.processor_name.endsWith('-flaky')).map((r) => r.status)).toEqual([
      'retry',
      'retry',
      'success',
    ]);
  });

  it('a slow receiver is cut off by timeout_ms and retried', async () => {
    const tag = uid('slow');
    plan.set(`/${tag}`, [200]);
    delays.set(`/${tag}`, 2000);
    await webhook(tag, `/${tag}`, { timeout_ms: 150 });
    const event = await createEvent(t, { event_type: tag });
    const started = Date.now();
    const done = await settled(t, event.event_id);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(done.status).toBe('failed');
    expect((await results(t, event.event_id)).map((r) => r.message)).toEqual(
      Array(3).fill('timed out after 150 ms'),
    );
    for (const row of await results(t, event.event_id)) expect(row.duration_ms).toBeLessThan(1000);
  });

  it('a processor registered while an event is still pending applies to it', async () => {
    const tag = uid('late');
    // Hold the event back: its first processor answers slowly and fails once, so a retry follows
    // the registration of the second.
    plan.set(`/${tag}/first`, [503, 200]);
    delays.set(`/${tag}/first`, 300);
    await webhook(tag, `/${tag}/first`);
    const event = await createEvent(t, { event_type: tag });
    await waitFor('first attempt', () => (calls(`/${tag}/first`).length >= 1 ? true : undefined));
    await webhook(tag, `/${tag}/second`);
    const done = await settled(t, event.event_id);
    expect(done.status).toBe('processed');
    expect(calls(`/${tag}/second`)).toHaveLength(1);
  });
});

describe('a run never outlives its claim', () => {
  let t: TestApp;
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await Receiver.start(() => ({ status: 200, delayMs: 3000 }));
    t = await startTestApp(
      'pglite',
      {
        WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
        PROCESSING_POLL_MS: '20',
        PROCESSING_LEASE_MS: '2000',
        PROCESSING_MAX_RETRIES: '1',
        PROCESSING_RETRY_BASE_MS: '20',
      },
      { workers: true },
    );
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  it('a timeout longer than the lease allows is cut to it and counts as a timeout', async () => {
    const tag = uid('lease');
    await registerProcessor(t, {
      processor_name: tag,
      processor_type: 'webhook',
      filters: { event_type: tag },
      config: { url: receiver.url(`/${tag}`), timeout_ms: 60_000 },
    });
    const event = await createEvent(t, { event_type: tag });
    const done = await settled(t, event.event_id);
    expect(done.status).toBe('failed');
    // Lease 2000 ms: a margin of 500 for the claim and 500 for writing the outcome.
    expect((await results(t, event.event_id)).map((r) => r.message)).toEqual([
      'timed out after 1000 ms',
      'timed out after 1000 ms',
    ]);
  });
});
