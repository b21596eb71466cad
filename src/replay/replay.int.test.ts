/**
 * Replay through the API and the real worker, on PostgreSQL and PGlite with the in-process bus
 * (read back from its `event-stream`): validation, dry runs, order and counts for each kind of
 * selection, the bound at the request, reprocessing (new results, originals untouched, failures
 * counted), cancel, progress, the list, and the lifecycle messages. NATS, outages and a service
 * killed mid-replay: resume.int.test.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeText } from '../bus/bus.js';
import { EVENT_STREAM, type Envelope } from '../bus/envelope.js';
import { createMemoryBus } from '../bus/memory.js';
import { deliveryKey, PermanentProcessorError, type ProcessorType } from '../processing/processor-type.js';
import { STORE_KINDS, startTestApp, type TestApp } from '../test-support/app.js';
import {
  createEvents,
  get,
  post,
  uid,
  validationPaths,
  type ErrorJson,
  type EventJson,
} from '../test-support/http.js';
import { createProcessorTypes } from '../processing/types/index.js';
import { insertReplay, readReplayPage, readReplayPageJson } from '../store/replay.js';
import { registerProcessor, settled } from '../test-support/processing.js';
import { waitFor } from '../test-support/wait.js';
import { startedMessage } from './messages.js';
import { startReplayWorker } from './worker.js';

const REPLAY = '/api/v1/events/replay';

interface ReplayJson {
  replay_id: string;
  status: string;
  selection: Record<string, unknown>;
  target_service: string;
  subject: string;
  reprocess: boolean;
  total: number;
  replayed: number;
  failed: number;
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

type MemoryBus = ReturnType<typeof createMemoryBus>;

/** Envelopes the bus holds on `subject`, in stream order. */
function published<T = EventJson>(t: TestApp, subject: string): Envelope<T>[] {
  return (t.bus as MemoryBus)
    .streamMessages(EVENT_STREAM)
    .filter((m) => m.subject === subject)
    .map((m) => JSON.parse(decodeText(m.data)) as Envelope<T>);
}

const del = (t: TestApp, url: string) => t.app.http.inject({ method: 'DELETE', url });

async function startReplay(t: TestApp, body: Record<string, unknown>): Promise<string> {
  const res = await post(t, REPLAY, body);
  expect(res.statusCode, res.body).toBe(202);
  return res.json<{ replay_id: string }>().replay_id;
}

async function finished(t: TestApp, replayId: string): Promise<ReplayJson> {
  return waitFor(`replay ${replayId} to end`, async () => {
    const job = (await get(t, `${REPLAY}/${replayId}`)).json<ReplayJson>();
    return job.status === 'queued' || job.status === 'running' ? undefined : job;
  });
}

const at = (base: string, minutes: number) => new Date(Date.parse(base) + minutes * 60_000).toISOString();

/** Records every run of its processors; fails (for good) the events whose data says `bad`. */
function recorder() {
  const runs: { event_id: string; processor: string; key: string }[] = [];
  let delayMs = 0;
  const type: ProcessorType = {
    validate: () => [],
    async run(event, _config, context) {
      if (delayMs > 0) await sleep(delayMs, undefined, { signal: context.signal }).catch(() => undefined);
      runs.push({
        event_id: event.event_id,
        processor: context.processor.processor_name,
        key: deliveryKey(event, context),
      });
      if ((event.data as { bad?: boolean }).bad) throw new PermanentProcessorError('bad event');
    },
  };
  return { type, runs, slow: (ms: number) => (delayMs = ms) };
}

describe.each(STORE_KINDS)('replay (%s)', (kind) => {
  let t: TestApp;
  const record = recorder();

  beforeAll(async () => {
    const bus = createMemoryBus({ maxMessagesPerStream: 1_000_000 });
    await bus.ensureStream({ name: EVENT_STREAM, subjects: ['event.>'] });
    t = await startTestApp(
      kind,
      { REPLAY_PAGE_SIZE: '50', REPLAY_POLL_MS: '20', PROCESSING_POLL_MS: '20', PROCESSING_CONCURRENCY: '4' },
      { workers: true, bus, processorTypes: { recorder: record.type } },
    );
  });
  afterAll(async () => {
    await t?.close();
  });

  it('answers 422 naming the field and the reason', async () => {
    expect(validationPaths(await post(t, REPLAY, {}))).toEqual(['body']);
    expect(validationPaths(await post(t, REPLAY, { start_time: '2024-01-01T00:00:00Z' }))).toEqual([
      'body.end_time',
    ]);
    const backwards = await post(t, REPLAY, {
      start_time: '2024-01-02T00:00:00Z',
      end_time: '2024-01-01T00:00:00Z',
    });
    expect(backwards.json<ErrorJson>().errors).toEqual([
      { path: 'body.end_time', message: 'must not be before start_time' },
    ]);
    expect(validationPaths(await post(t, REPLAY, { event_ids: ['a', 'b', 'a'] }))).toEqual([
      'body.event_ids[2]',
    ]);
    const tooMany = Array.from({ length: 10_001 }, (_, i) => `e${i}`);
    expect(validationPaths(await post(t, REPLAY, { event_ids: tooMany }))).toEqual(['body.event_ids']);
    expect(validationPaths(await post(t, REPLAY, { event_ids: [] }))).toEqual(['body.event_ids']);
    expect(validationPaths(await post(t, REPLAY, { stream_id: 's:1', event_source: 'nowhere' }))).toEqual([
      'body.event_source',
    ]);
    expect(validationPaths(await post(t, REPLAY, { stream_id: 's:1', target_service: ' ' }))).toEqual([
      'body.target_service',
    ]);
    expect(validationPaths(await post(t, REPLAY, { stream_id: 's:1', replay_everything: true }))).toEqual([
      'body.replay_everything',
    ]);
    expect(validationPaths(await post(t, REPLAY, { stream_id: 's:1', end_time: 'yesterday' }))).toEqual([
      'body.end_time',
    ]);
  });

  it('dry run: the exact count and the first 1,000 ids in order; nothing stored, nothing published', async () => {
    const type = uid('dry');
    const base = '2021-03-01T00:00:00.000Z';
    const events = await createEvents(
      t,
      Array.from({ length: 1_200 }, (_, i) => ({
        event_type: type,
        timestamp: at(base, i % 7),
        data: { i },
      })),
      600,
    );
    const jobsBefore = (await get(t, REPLAY)).json<{ total: number }>().total;
    const messagesBefore = (t.bus as MemoryBus).streamMessages(EVENT_STREAM).length;
    const res = await post(t, REPLAY, {
      start_time: base,
      end_time: at(base, 10),
      event_type: type,
      dry_run: true,
    });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{ dry_run: boolean; events_count: number; events: string[] }>();
    expect(body.dry_run).toBe(true);
    expect(body.events_count).toBe(1_200);
    const inOrder = [...events].sort((a, b) => a.position - b.position).map((e) => e.event_id);
    expect(body.events).toEqual(inOrder.slice(0, 1_000));
    // The end is inclusive: only the events at the first minute and before.
    const narrow = await post(t, REPLAY, { start_time: base, end_time: at(base, 1), dry_run: true });
    expect(narrow.json<{ events_count: number }>().events_count).toBe(
      events.filter((e) => Date.parse(e.timestamp) <= Date.parse(at(base, 1))).length,
    );
    expect((await get(t, REPLAY)).json<{ total: number }>().total).toBe(jobsBefore);
    const after = (t.bus as MemoryBus).streamMessages(EVENT_STREAM).slice(messagesBefore);
    expect(after.filter((m) => m.subject.startsWith('event.replay'))).toEqual([]);
  });

  it('replays a time range in position order to event.replayed.{target}, filtered by type and source', async () => {
    const type = uid('range');
    const other = uid('other');
    const base = '2021-04-01T00:00:00.000Z';
    // Timestamps out of position order: the replay follows positions, not timestamps.
    const stored = await createEvents(
      t,
      Array.from({ length: 180 }, (_, i) => ({
        event_type: i % 3 === 2 ? other : type,
        event_source: i % 4 === 0 ? 'frontend' : 'backend',
        timestamp: at(base, (i * 37) % 120),
        data: { i },
      })),
      60,
    );
    const target = uid('svc');
    const end = at(base, 90);
    const expected = stored
      .filter(
        (e) =>
          e.event_type === type && e.event_source === 'backend' && Date.parse(e.timestamp) <= Date.parse(end),
      )
      .sort((a, b) => a.position - b.position);
    const res = await post(t, REPLAY, {
      start_time: base,
      end_time: end,
      event_type: type,
      event_source: 'backend',
      target_service: target,
    });
    expect(res.statusCode, res.body).toBe(202);
    const started = res.json<{ status: string; replay_id: string; events_count: number; subject: string }>();
    expect(started).toMatchObject({
      status: 'replay_started',
      events_count: expected.length,
      dry_run: false,
      subject: `event.replayed.${target}`,
    });
    const job = await finished(t, started.replay_id);
    expect(job).toMatchObject({
      status: 'completed',
      total: expected.length,
      replayed: expected.length,
      failed: 0,
      error: null,
    });
    expect(Date.parse(job.started_at!)).toBeLessThanOrEqual(Date.parse(job.finished_at!));
    const messages = published(t, `event.replayed.${target}`);
    expect(messages.map((m) => m.data.event_id)).toEqual(expected.map((e) => e.event_id));
    expect(messages[0]).toMatchObject({
      id: `${started.replay_id}:${expected[0]!.event_id}`,
      type: `event.replayed.${target}`,
      source: 'event_service',
      data: {
        event_id: expected[0]!.event_id,
        event_type: type,
        position: expected[0]!.position,
        timestamp: expected[0]!.timestamp,
        data: expected[0]!.data,
      },
    });
  });

  it('replays a stream in version order, and a list of ids in position order (unknown ids not counted)', async () => {
    const entity = uid('cart');
    const type = uid('stream');
    // The stream's events interleaved with others.
    const stored: EventJson[] = [];
    for (let round = 0; round < 3; round++) {
      stored.push(
        ...(await createEvents(t, [
          ...Array.from({ length: 40 }, (_, i) => ({
            event_type: `${type}.${i % 2 === 0 ? 'added' : 'removed'}`,
            entity_type: 'cart',
            entity_id: entity,
            data: { round, i },
          })),
          { event_type: `${type}.noise`, data: { round } },
        ])),
      );
    }
    const stream = stored.filter((e) => e.stream_id === `cart:${entity}`);
    const byStream = await startReplay(t, { stream_id: `cart:${entity}`, target_service: `${entity}-all` });
    expect(await finished(t, byStream)).toMatchObject({ status: 'completed', total: 120, replayed: 120 });
    const streamMessages = published(t, `event.replayed.${entity}-all`);
    expect(streamMessages.map((m) => m.data.stream_version)).toEqual(
      Array.from({ length: 120 }, (_, i) => i + 1),
    );

    // The stream within a time range and of one type: the criteria narrow each other.
    const added = stream.filter((e) => e.event_type === `${type}.added`);
    const narrowed = await startReplay(t, {
      stream_id: `cart:${entity}`,
      event_type: `${type}.added`,
      start_time: added[10]!.timestamp,
      end_time: '2999-01-01T00:00:00Z',
      target_service: `${entity}-added`,
    });
    const narrowedJob = await finished(t, narrowed);
    const expectedNarrow = added.filter((e) => Date.parse(e.timestamp) >= Date.parse(added[10]!.timestamp));
    expect(narrowedJob.total).toBe(expectedNarrow.length);
    expect(published(t, `event.replayed.${entity}-added`).map((m) => m.data.event_id)).toEqual(
      expectedNarrow.map((e) => e.event_id),
    );

    const shuffled = [...stored].reverse().filter((_, i) => i % 5 !== 0);
    const byIds = await startReplay(t, {
      event_ids: [...shuffled.map((e) => e.event_id), uid('missing')],
      target_service: `${entity}-ids`,
    });
    expect(await finished(t, byIds)).toMatchObject({
      status: 'completed',
      total: shuffled.length,
      replayed: shuffled.length,
      selection: { event_ids_count: shuffled.length + 1 },
    });
    expect(published(t, `event.replayed.${entity}-ids`).map((m) => m.data.event_id)).toEqual(
      [...shuffled].sort((a, b) => a.position - b.position).map((e) => e.event_id),
    );
  });

  it('covers the events stored before the request, not those stored after it', async () => {
    const type = uid('bound');
    const before = await createEvents(
      t,
      Array.from({ length: 30 }, (_, i) => ({ event_type: type, data: { i } })),
    );
    const target = uid('bound');
    const replayId = await startReplay(t, {
      start_time: '2000-01-01T00:00:00Z',
      end_time: '2999-01-01T00:00:00Z',
      event_type: type,
      target_service: target,
    });
    const after = await createEvents(
      t,
      Array.from({ length: 30 }, (_, i) => ({ event_type: type, data: { i } })),
    );
    expect(await finished(t, replayId)).toMatchObject({ status: 'completed', total: 30, replayed: 30 });
    const ids = published(t, `event.replayed.${target}`).map((m) => m.data.event_id);
    expect(ids).toEqual(before.map((e) => e.event_id));
    expect(ids.some((id) => after.some((e) => e.event_id === id))).toBe(false);
  });

  it("the database writes an event's JSON as the service does (the replay's cheap path)", async () => {
    const type = uid('json');
    await createEvents(t, [
      {
        event_type: type,
        entity_type: 'doc',
        entity_id: uid('d'),
        user_id: 'u-1',
        data: { text: 'Grüße "quoted" \\ \u2028 😀', nested: { list: [1, 2.5, null, true], empty: {} } },
        metadata: { a: 'b' },
        context: { ip: '10.0.0.1' },
        properties: null,
        timestamp: '2021-05-01T12:34:56.789Z',
        idempotency_key: uid('k'),
      },
      { event_type: type, data: {}, timestamp: '0001-01-01T00:00:00Z' },
      { event_type: type, timestamp: '9999-12-30T23:59:59.999Z' },
    ]);
    const selection = {
      event_type: type,
      start_time: '0001-01-01T00:00:00.000Z',
      end_time: '9999-12-30T23:59:59.999Z',
    };
    await waitFor('processed', async () => {
      const rows = await readReplayPage(t.db, selection, {
        after: 0,
        upTo: Number.MAX_SAFE_INTEGER,
        limit: 10,
      });
      return rows.every((e) => e.processed_at !== null) ? true : undefined;
    });
    const page = { after: 0, upTo: Number.MAX_SAFE_INTEGER, limit: 10 };
    const objects = await readReplayPage(t.db, selection, page);
    const texts = await readReplayPageJson(t.db, selection, page);
    expect(texts).toHaveLength(3);
    expect(texts.map((row) => JSON.parse(row.json) as unknown)).toEqual(
      objects.map((event) => JSON.parse(JSON.stringify(event)) as unknown),
    );
    expect(texts.map((row) => [row.position, row.event_id])).toEqual(
      objects.map((e) => [e.position, e.event_id]),
    );
  });

  it('an empty selection completes at once with nothing published', async () => {
    const target = uid('empty');
    const res = await post(t, REPLAY, { stream_id: `nothing:${uid('x')}`, target_service: target });
    expect(res.json<{ events_count: number }>().events_count).toBe(0);
    const job = await finished(t, res.json<{ replay_id: string }>().replay_id);
    expect(job).toMatchObject({ status: 'completed', total: 0, replayed: 0, failed: 0 });
    expect(published(t, `event.replayed.${target}`)).toEqual([]);
  });

  it('reprocess: runs the matching processors again, new results under the replay, originals untouched', async () => {
    const type = uid('re');
    const first = await registerProcessor(t, {
      processor_name: `${type}-first`,
      processor_type: 'recorder',
      priority: 10,
      filters: { event_type: `${type}.>` },
    });
    await registerProcessor(t, {
      processor_name: `${type}-second`,
      processor_type: 'recorder',
      filters: { event_type: `${type}.a` },
    });
    const events = await createEvents(
      t,
      Array.from({ length: 24 }, (_, i) => ({
        event_type: `${type}.${i % 2 === 0 ? 'a' : 'b'}`,
        data: { i, bad: i % 6 === 5 },
      })),
    );
    for (const event of events) await settled(t, event.event_id);
    const snapshot = async () =>
      (
        await t.db.query<Record<string, unknown>>(
          `SELECT event_id, status, processors, error_message, retry_count, processed_at, updated_at
           FROM event.events_current WHERE event_type LIKE $1 ORDER BY position`,
          [`${type}.%`],
        )
      ).rows;
    const originalResults = async () =>
      (
        await t.db.query<Record<string, unknown>>(
          `SELECT result_id, event_id, processor_name, status, attempt FROM event.processing_results
           WHERE event_id = ANY($1::text[]) AND replay_id IS NULL ORDER BY result_id`,
          [events.map((e) => e.event_id)],
        )
      ).rows;
    const eventsBefore = await snapshot();
    const resultsBefore = await originalResults();
    expect(resultsBefore.length).toBeGreaterThan(0);
    const runsBefore = record.runs.length;

    const replayId = await startReplay(t, {
      start_time: '2000-01-01T00:00:00Z',
      end_time: '2999-01-01T00:00:00Z',
      event_ids: events.map((e) => e.event_id),
      reprocess: true,
    });
    const bad = events.filter((e) => (e.data as { bad: boolean }).bad);
    const job = await finished(t, replayId);
    expect(job).toMatchObject({
      status: 'completed',
      reprocess: true,
      total: 24,
      replayed: 24 - bad.length,
      failed: bad.length,
    });
    // Every matching processor ran once more per event, in priority order.
    const reran = record.runs.slice(runsBefore);
    const expectedRuns = events.flatMap((e) =>
      e.event_type.endsWith('.a')
        ? [`${type}-first`, `${type}-second`].map((p) => `${e.event_id}/${p}`)
        : [`${e.event_id}/${type}-first`],
    );
    expect(reran.map((r) => `${r.event_id}/${r.processor}`).sort()).toEqual([...expectedRuns].sort());
    // A receiver that deduplicates on the delivery key sees each replay's runs as new deliveries.
    for (const run of reran) expect(run.key).toMatch(new RegExp(`:replay:${replayId}$`));
    for (const run of record.runs.slice(0, runsBefore)) expect(run.key).not.toContain(':replay:');

    const res = await get(t, `${REPLAY}/${replayId}/results?limit=1000`);
    expect(res.statusCode, res.body).toBe(200);
    const page = res.json<{
      results: { event_id: string; processor_name: string; status: string; message: string | null }[];
      total: number;
    }>();
    expect(page.total).toBe(expectedRuns.length);
    for (const result of page.results) {
      const isBad = bad.some((e) => e.event_id === result.event_id);
      expect(result.status).toBe(isBad ? 'failed' : 'success');
      if (isBad) expect(result.message).toBe('bad event');
    }
    const failures = await get(t, `${REPLAY}/${replayId}/results?status=failed`);
    expect(
      new Set(failures.json<{ results: { event_id: string }[] }>().results.map((r) => r.event_id)),
    ).toEqual(new Set(bad.map((e) => e.event_id)));
    const rows = await t.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM event.processing_results WHERE replay_id = $1',
      [replayId],
    );
    expect(rows.rows[0]!.n).toBe(expectedRuns.length);

    expect(await snapshot()).toEqual(eventsBefore);
    expect(await originalResults()).toEqual(resultsBefore);
    expect(first.processor_id).toBeTruthy();
  });

  it('cancel: the job stops before its next page; 409 once it has ended, 404 for unknown ids', async () => {
    const type = uid('cancel');
    const events = await createEvents(
      t,
      Array.from({ length: 400 }, (_, i) => ({ event_type: type, data: { i } })),
    );
    for (const event of events.slice(-3)) await settled(t, event.event_id);
    await registerProcessor(t, {
      processor_name: type,
      processor_type: 'recorder',
      filters: { event_type: type },
    });
    record.slow(10);
    try {
      const target = uid('cancel');
      const replayId = await startReplay(t, {
        start_time: '2000-01-01T00:00:00Z',
        end_time: '2999-01-01T00:00:00Z',
        event_type: type,
        reprocess: true,
        target_service: target,
      });
      await waitFor('a first page', async () => {
        const job = (await get(t, `${REPLAY}/${replayId}`)).json<ReplayJson>();
        return job.replayed > 0 ? job : undefined;
      });
      const seenBefore = t.workers!.replay.stats().finished;
      const res = await del(t, `${REPLAY}/${replayId}`);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json<ReplayJson>()).toMatchObject({ replay_id: replayId, status: 'cancelled' });
      expect(res.json<ReplayJson>().finished_at).not.toBeNull();
      // The worker sees it at its next page boundary and lets the job go.
      await waitFor('the worker to stop', () =>
        t.workers!.replay.stats().finished > seenBefore ? true : undefined,
      );
      const job = (await get(t, `${REPLAY}/${replayId}`)).json<ReplayJson>();
      expect(job.status).toBe('cancelled');
      expect(job.replayed).toBeLessThan(400);
      // What was published was counted, and nothing more is published.
      expect(published(t, `event.replayed.${target}`)).toHaveLength(job.replayed);
      const completed = await waitFor('event.replay.completed', () =>
        published<{ replay_id: string; status: string }>(t, 'event.replay.completed').find(
          (m) => m.data.replay_id === replayId,
        ),
      );
      expect(completed.data.status).toBe('cancelled');

      const again = await del(t, `${REPLAY}/${replayId}`);
      expect(again.statusCode).toBe(409);
      expect(again.json<ErrorJson>().code).toBe('conflict');
    } finally {
      record.slow(0);
    }
    expect((await del(t, `${REPLAY}/0190f0f0-0000-7000-8000-000000000000`)).statusCode).toBe(404);
    expect((await del(t, `${REPLAY}/not-a-replay`)).statusCode).toBe(404);
    expect((await get(t, `${REPLAY}/not-a-replay`)).statusCode).toBe(404);
    expect((await get(t, `${REPLAY}/0190f0f0-0000-7000-8000-000000000000`)).json<ErrorJson>().code).toBe(
      'not_found',
    );
  });

  it('announces event.replay.started and event.replay.completed with the counts', async () => {
    const type = uid('announce');
    await createEvents(
      t,
      Array.from({ length: 5 }, (_, i) => ({ event_type: type, data: { i } })),
    );
    const replayId = await startReplay(t, {
      start_time: '2000-01-01T00:00:00Z',
      end_time: '2999-01-01T00:00:00Z',
      event_type: type,
      target_service: 'reports',
    });
    await finished(t, replayId);
    const startedMessage = await waitFor('event.replay.started', () =>
      published<Record<string, unknown>>(t, 'event.replay.started').find(
        (m) => m.data.replay_id === replayId,
      ),
    );
    expect(startedMessage).toMatchObject({
      id: `replay-started-${replayId}`,
      type: 'event.replay.started',
      source: 'event_service',
      data: { events_count: 5, target_service: 'reports', subject: 'event.replayed.reports', dry_run: false },
    });
    const completedMessage = await waitFor('event.replay.completed', () =>
      published<Record<string, unknown>>(t, 'event.replay.completed').find(
        (m) => m.data.replay_id === replayId,
      ),
    );
    expect(completedMessage.data).toMatchObject({ status: 'completed', total: 5, replayed: 5, failed: 0 });
  });

  it('two instances share the jobs: each page is worked on once', async () => {
    const types = createProcessorTypes({ bus: t.bus, allowPrivateNetworks: false });
    const second = startReplayWorker({
      db: t.db,
      bus: t.bus,
      types,
      pageSize: 50,
      leaseMs: 30_000,
      pollMs: 20,
      concurrency: 1,
      reprocessConcurrency: 1,
      defaultTimeoutMs: 1000,
      maxRunMs: 1000,
    });
    try {
      const type = uid('two');
      await createEvents(
        t,
        Array.from({ length: 600 }, (_, i) => ({ event_type: type, data: { i } })),
      );
      const first = t.workers!.replay.stats().replayed;
      const jobs = [];
      for (let i = 0; i < 4; i++) {
        jobs.push(
          await startReplay(t, {
            start_time: '2000-01-01T00:00:00Z',
            end_time: '2999-01-01T00:00:00Z',
            event_type: type,
            target_service: `${type}-${i}`,
          }),
        );
      }
      for (const id of jobs)
        expect(await finished(t, id)).toMatchObject({ status: 'completed', replayed: 600 });
      expect(t.workers!.replay.stats().replayed - first + second.stats().replayed).toBe(4 * 600);
      for (let i = 0; i < 4; i++) expect(published(t, `event.replayed.${type}-${i}`)).toHaveLength(600);
    } finally {
      await second.stop();
      await types.close();
    }
  });

  it('a job that keeps meeting an error that is not an outage fails after 5 attempts, announced', async () => {
    // A selection the API would refuse, stored as is: every page query fails in the database.
    const replayId = '0190f0f0-0000-7000-8000-0000000000ff';
    const job = {
      replay_id: replayId,
      selection: { start_time: 'not a time', end_time: 'not a time either' },
      target_service: 'all',
      subject: 'event.replayed.all',
      reprocess: false,
      total: 1,
      last_position: Number.MAX_SAFE_INTEGER,
      cursor_position: 0,
    };
    await insertReplay(t.db, job, startedMessage(job, new Date()));
    const ended = await finished(t, replayId);
    expect(ended).toMatchObject({ status: 'failed', replayed: 0, failed: 0 });
    expect(ended.error).toMatch(/after 5 attempts/);
    const completed = await waitFor('event.replay.completed', () =>
      published<{ replay_id: string; status: string }>(t, 'event.replay.completed').find(
        (m) => m.data.replay_id === replayId,
      ),
    );
    expect(completed.data.status).toBe('failed');
  });

  it('the OpenAPI document has every replay route with its schemas', async () => {
    const res = await get(t, '/docs/json');
    expect(res.statusCode).toBe(200);
    const doc = res.json<{
      paths: Record<string, Record<string, { requestBody?: unknown; responses?: Record<string, unknown> }>>;
    }>();
    for (const [method, path, status] of [
      ['post', REPLAY, '200'],
      ['post', REPLAY, '202'],
      ['post', REPLAY, '422'],
      ['get', REPLAY, '200'],
      ['get', `${REPLAY}/{replay_id}`, '200'],
      ['delete', `${REPLAY}/{replay_id}`, '409'],
      ['get', `${REPLAY}/{replay_id}/results`, '200'],
    ] as const) {
      const operation = doc.paths[path]?.[method];
      expect(operation, `${method} ${path}`).toBeDefined();
      expect(operation?.responses?.[status], `${method} ${path} ${status}`).toBeDefined();
    }
    expect(doc.paths[REPLAY]?.post?.requestBody).toBeDefined();
  });

  it('lists replays newest first, by status', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await startReplay(t, { stream_id: `list:${uid('x')}` }));
    for (const id of ids) await finished(t, id);
    const res = await get(t, `${REPLAY}?status=completed&limit=2`);
    expect(res.statusCode, res.body).toBe(200);
    const page = res.json<{ replays: ReplayJson[]; total: number; has_more: boolean; limit: number }>();
    expect(page.replays.map((r) => r.replay_id)).toEqual([ids[2], ids[1]]);
    expect(page.total).toBeGreaterThanOrEqual(3);
    expect(page.has_more).toBe(true);
    expect(page.replays.every((r) => r.status === 'completed')).toBe(true);
    expect(validationPaths(await get(t, `${REPLAY}?status=paused`))).toEqual(['query.status']);
  });
});
