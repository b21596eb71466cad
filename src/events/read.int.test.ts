import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_CATEGORIES, EVENT_SOURCES } from '../domain/event.js';
import { STORE_KINDS, startTestApp, type TestApp } from '../test-support/app.js';
import {
  createEvent,
  createEvents,
  get,
  newestFirst,
  post,
  queryEvents,
  seededRandom,
  uid,
  validationPaths,
  type ErrorJson,
  type EventJson,
  type EventListJson,
} from '../test-support/http.js';

const QUERY = '/api/v1/events/query';
const STATISTICS = '/api/v1/events/statistics';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

type Filter = Record<string, unknown>;

const EQUALITY_FIELDS = [
  'user_id',
  'event_type',
  'event_source',
  'event_category',
  'status',
  'correlation_id',
  'session_id',
  'organization_id',
  'device_id',
  'stream_id',
] as const;

/** The query endpoint's semantics, by brute force. */
function matches(event: EventJson, filter: Filter): boolean {
  for (const field of EQUALITY_FIELDS) {
    if (filter[field] !== undefined && event[field] !== filter[field]) return false;
  }
  if (filter.event_types !== undefined && !(filter.event_types as string[]).includes(event.event_type)) {
    return false;
  }
  const ts = Date.parse(event.timestamp);
  if (filter.start_time !== undefined && ts < Date.parse(filter.start_time as string)) return false;
  if (filter.end_time !== undefined && ts > Date.parse(filter.end_time as string)) return false;
  return true;
}

const pick = <T>(rand: () => number, values: readonly T[]): T => values[Math.floor(rand() * values.length)]!;
const iso = (ms: number) => new Date(ms).toISOString();

describe.each(STORE_KINDS)('GET /api/v1/events/{event_id} (%s)', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(kind);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('answers 200 with the whole event', async () => {
    const created = await createEvent(t, {
      event_type: 'profile.updated',
      event_source: 'frontend',
      event_category: 'user_lifecycle',
      user_id: uid('user'),
      session_id: uid('session'),
      organization_id: uid('org'),
      device_id: uid('device'),
      correlation_id: uid('corr'),
      data: { name: 'Ada', tags: ['a', 'b'], n: 1.25, deep: { x: null } },
      metadata: { source_ip: '10.1.2.3' },
      context: { page: '/settings' },
      properties: { plan: 'pro' },
      timestamp: '2024-06-01T08:00:00.123Z',
      stream_id: `profile:${uid('p')}`,
      idempotency_key: uid('key'),
    });
    const res = await get(t, `/api/v1/events/${created.event_id}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json()).toEqual(created);
  });

  it('reads events whose client-chosen id needs URL encoding', async () => {
    for (const eventId of [`${uid('a')} b/c?d#e%f`, `${uid('ü')}-ñ-🎉`, `${uid('x')}:y`]) {
      const created = await createEvent(t, { event_type: 'x', event_id: eventId });
      const res = await get(t, `/api/v1/events/${encodeURIComponent(eventId)}`);
      expect(res.statusCode, eventId).toBe(200);
      expect(res.json()).toEqual(created);
    }
  });

  it('answers 404 with detail "Event not found: <id>" for an unknown id', async () => {
    for (const id of ['0190aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee', uid('missing'), 'with space']) {
      const res = await get(t, `/api/v1/events/${encodeURIComponent(id)}`);
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual({ detail: `Event not found: ${id}`, code: 'not_found' });
    }
  });

  it('reads ids of the longest length the API accepts, also URL-encoded', async () => {
    for (const eventId of ['x'.repeat(255), `${uid('l')}-${'é'.repeat(240)}`]) {
      const created = await createEvent(t, { event_type: 'long.id', event_id: eventId.slice(0, 255) });
      const res = await get(t, `/api/v1/events/${encodeURIComponent(created.event_id)}`);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual(created);
    }
  });

  it('answers 422 for an id longer than any stored id', async () => {
    const res = await get(t, `/api/v1/events/${'x'.repeat(256)}`);
    expect(validationPaths(res)).toEqual(['path.event_id']);
  });
});

describe.each(STORE_KINDS)('POST /api/v1/events/query (%s)', (kind) => {
  let t: TestApp;
  /** Every stored event, newest first. */
  let all: EventJson[];
  const N = 600;
  const BASE = Date.parse('2023-03-10T00:00:00Z');
  const SPAN = 5 * DAY;
  const TYPES = ['page.view', 'user.login', 'order.placed', 'order.paid', 'device.ping', 'rare.type'];
  const SOURCES = ['frontend', 'backend', 'iot_device', 'external_api'];
  const CATEGORIES = ['page_view', 'user_action', 'order', 'device_status', 'payment'];
  const USERS = ['qu-a', 'qu-b', 'qu-c', 'qu-d', 'qu-e', 'qu-f', 'qu-g'];
  const SESSIONS = Array.from({ length: 10 }, (_, i) => `qs-${i}`);
  const ORGS = ['qo-1', 'qo-2', 'qo-3'];
  const DEVICES = ['qd-1', 'qd-2', 'qd-3', 'qd-4'];
  const CORRELATIONS = ['qc-1', 'qc-2', 'qc-3', 'qc-4', 'qc-5'];
  const STREAMS = ['qstream:1', 'qstream:2', 'qstream:3', 'other:1'];

  beforeAll(async () => {
    t = await startTestApp(kind);
    const rand = seededRandom(20240601);
    const orNull = <T>(values: readonly T[]) => (rand() < 0.25 ? null : pick(rand, values));
    const bodies: Record<string, unknown>[] = [];
    let last = BASE;
    for (let i = 0; i < N; i++) {
      const r = rand();
      let ts: number;
      if (r < 0.1)
        ts = BASE + Math.floor(rand() * 5 * 24) * HOUR; // on an hour boundary
      else if (r < 0.15)
        ts = BASE + Math.floor(rand() * 5) * DAY; // at midnight
      else if (r < 0.22)
        ts = last; // the same instant as the one before
      else ts = BASE + Math.floor(rand() * SPAN);
      last = ts;
      const stream = rand() < 0.3 ? pick(rand, STREAMS) : undefined;
      bodies.push({
        event_type: rand() < 0.02 ? 'rare.type' : pick(rand, TYPES.slice(0, 5)),
        event_source: pick(rand, SOURCES),
        event_category: pick(rand, CATEGORIES),
        user_id: orNull(USERS),
        session_id: orNull(SESSIONS),
        organization_id: orNull(ORGS),
        device_id: orNull(DEVICES),
        correlation_id: orNull(CORRELATIONS),
        data: { i },
        timestamp: iso(ts),
        ...(stream ? { stream_id: stream } : {}),
      });
    }
    const created = await createEvents(t, bodies, 200);
    all = [...created].sort(newestFirst);
  });
  afterAll(async () => {
    await t?.close();
  });

  function expected(filter: Filter): EventJson[] {
    return all.filter((event) => matches(event, filter));
  }

  async function expectQuery(filter: Filter): Promise<EventListJson> {
    const want = expected(filter);
    const page = await queryEvents(t, { ...filter, limit: 1000 });
    expect(page.total, JSON.stringify(filter)).toBe(want.length);
    expect(
      page.events.map((e) => e.event_id),
      JSON.stringify(filter),
    ).toEqual(want.map((e) => e.event_id));
    expect(page.has_more).toBe(false);
    return page;
  }

  it('without filters answers the newest 100 with the exact total', async () => {
    const page = await queryEvents(t, {});
    expect(page).toMatchObject({ total: N, limit: 100, offset: 0, has_more: true });
    expect(page.events.map((e) => e.event_id)).toEqual(all.slice(0, 100).map((e) => e.event_id));
    expect(page.events[0]).toEqual(all[0]);
    expect(typeof page.next_cursor).toBe('string');
  });

  it('orders newest first by timestamp, then by position', async () => {
    const page = await queryEvents(t, { limit: 1000 });
    expect(page.events).toHaveLength(N);
    for (let i = 1; i < page.events.length; i++) {
      const [a, b] = [page.events[i - 1]!, page.events[i]!];
      const order = Date.parse(a.timestamp) - Date.parse(b.timestamp) || a.position - b.position;
      expect(order).toBeGreaterThan(0);
    }
    // the dataset has events that share a timestamp
    const timestamps = new Set(page.events.map((e) => e.timestamp));
    expect(timestamps.size).toBeLessThan(N);
  });

  const singleFilters: [string, (rand: () => number) => Filter][] = [
    ['user_id', (r) => ({ user_id: pick(r, USERS) })],
    ['event_type', (r) => ({ event_type: pick(r, TYPES) })],
    ['event_types', (r) => ({ event_types: [pick(r, TYPES), pick(r, TYPES)] })],
    ['event_source', (r) => ({ event_source: pick(r, SOURCES) })],
    ['event_category', (r) => ({ event_category: pick(r, CATEGORIES) })],
    ['correlation_id', (r) => ({ correlation_id: pick(r, CORRELATIONS) })],
    ['session_id', (r) => ({ session_id: pick(r, SESSIONS) })],
    ['organization_id', (r) => ({ organization_id: pick(r, ORGS) })],
    ['device_id', (r) => ({ device_id: pick(r, DEVICES) })],
    ['stream_id', (r) => ({ stream_id: pick(r, STREAMS) })],
    ['start_time', (r) => ({ start_time: iso(BASE + Math.floor(r() * SPAN)) })],
    ['end_time', (r) => ({ end_time: iso(BASE + Math.floor(r() * SPAN)) })],
  ];

  it.each(singleFilters)('filters by %s alone', async (_name, make) => {
    const rand = seededRandom(_name.length * 7919);
    for (let i = 0; i < 4; i++) {
      const filter = make(rand);
      const page = await expectQuery(filter);
      expect(page.total).toBeGreaterThan(0);
    }
  });

  it('filters by status alone', async () => {
    await expectQuery({ status: 'processed' });
    const none = await expectQuery({ status: 'failed' });
    expect(none.total).toBe(0);
    expect(none.next_cursor).toBeNull();
  });

  it('treats start_time and end_time as inclusive', async () => {
    const target = all[Math.floor(N / 3)]!;
    const sameInstant = all.filter((e) => e.timestamp === target.timestamp);
    const exact = await expectQuery({ start_time: target.timestamp, end_time: target.timestamp });
    expect(exact.total).toBe(sameInstant.length);
    expect(exact.events.map((e) => e.event_id)).toContain(target.event_id);
    const from = await expectQuery({ start_time: target.timestamp });
    expect(from.events.map((e) => e.event_id)).toContain(target.event_id);
    const until = await expectQuery({ end_time: target.timestamp });
    expect(until.events.map((e) => e.event_id)).toContain(target.event_id);
    const after = await expectQuery({ start_time: iso(Date.parse(target.timestamp) + 1) });
    expect(after.events.map((e) => e.event_id)).not.toContain(target.event_id);
    // times with an offset mean the same instant
    const offset = new Date(Date.parse(target.timestamp) + 2 * HOUR).toISOString().replace('Z', '+02:00');
    const shifted = await expectQuery({ start_time: offset, end_time: offset });
    expect(shifted.total).toBe(sameInstant.length);
  });

  it('combines filters with AND', async () => {
    const rand = seededRandom(42);
    let nonEmpty = 0;
    for (let i = 0; i < 40; i++) {
      const parts = [...singleFilters].sort(() => rand() - 0.5).slice(0, 2 + Math.floor(rand() * 3));
      const filter = Object.assign({}, ...parts.map(([, make]) => make(rand))) as Filter;
      if (filter.start_time && filter.end_time && filter.start_time > filter.end_time) {
        [filter.start_time, filter.end_time] = [filter.end_time, filter.start_time];
      }
      const page = await expectQuery(filter);
      if (page.total! > 0) nonEmpty++;
    }
    expect(nonEmpty).toBeGreaterThan(5);
    const user = USERS[0]!;
    const both = await expectQuery({ user_id: user, event_type: 'page.view', event_source: 'frontend' });
    for (const e of both.events) expect(e).toMatchObject({ user_id: user, event_type: 'page.view' });
  });

  it('accepts limit 1 and 1000', async () => {
    const one = await queryEvents(t, { limit: 1 });
    expect(one.events.map((e) => e.event_id)).toEqual([all[0]!.event_id]);
    expect(one).toMatchObject({ limit: 1, offset: 0, total: N, has_more: true });
    const max = await queryEvents(t, { limit: 1000 });
    expect(max.events).toHaveLength(N);
    expect(max).toMatchObject({ limit: 1000, total: N, has_more: false, next_cursor: null });
  });

  it.each<[string, Filter, string]>([
    ['limit 0', { limit: 0 }, 'body.limit'],
    ['limit 1001', { limit: 1001 }, 'body.limit'],
    ['limit -1', { limit: -1 }, 'body.limit'],
    ['limit 1.5', { limit: 1.5 }, 'body.limit'],
    ['limit as text', { limit: '10' }, 'body.limit'],
    ['offset -1', { offset: -1 }, 'body.offset'],
    ['offset as text', { offset: '1' }, 'body.offset'],
    ['unknown field', { colour: 'red' }, 'body.colour'],
    ['bad event_source', { event_source: 'mainframe' }, 'body.event_source'],
    ['bad event_category', { event_category: 'misc' }, 'body.event_category'],
    ['bad status', { status: 'done' }, 'body.status'],
    ['bad start_time', { start_time: 'yesterday' }, 'body.start_time'],
    ['bad end_time', { end_time: '2024-13-01T00:00:00Z' }, 'body.end_time'],
    ['empty event_types', { event_types: [] }, 'body.event_types'],
    ['event_types not strings', { event_types: [1] }, 'body.event_types[0]'],
    ['user_id a number', { user_id: 7 }, 'body.user_id'],
    ['include_total as text', { include_total: 'no' }, 'body.include_total'],
    [
      'end before start',
      { start_time: '2024-01-02T00:00:00Z', end_time: '2024-01-01T00:00:00Z' },
      'body.end_time',
    ],
  ])('%s → 422', async (_name, body, path) => {
    expect(validationPaths(await post(t, QUERY, body))).toContain(path);
  });

  it('pages with offset; has_more is offset + limit < total', async () => {
    const rand = seededRandom(7);
    const filters: Filter[] = [{}, { user_id: USERS[1] }, { event_type: 'order.paid' }];
    for (let i = 0; i < 30; i++) {
      const filter = pick(rand, filters);
      const want = expected(filter);
      const limit = 1 + Math.floor(rand() * 60);
      const offset = rand() < 0.15 ? want.length + Math.floor(rand() * 5) : Math.floor(rand() * want.length);
      const page = await queryEvents(t, { ...filter, limit, offset });
      expect(page).toMatchObject({
        limit,
        offset,
        total: want.length,
        has_more: offset + limit < want.length,
      });
      expect(page.events.map((e) => e.event_id)).toEqual(
        want.slice(offset, offset + limit).map((e) => e.event_id),
      );
    }
    // the last page exactly
    const last = await queryEvents(t, { limit: 100, offset: N - 100 });
    expect(last.has_more).toBe(false);
    expect(last.events).toHaveLength(100);
  });

  it('counts exact totals for time ranges that cut hours and days anywhere', async () => {
    const rand = seededRandom(1234);
    const instant = (): number => {
      const r = rand();
      if (r < 0.25) return Date.parse(pick(rand, all).timestamp);
      if (r < 0.4) return BASE - DAY + Math.floor(rand() * 7 * 24) * HOUR;
      if (r < 0.5) return BASE + (Math.floor(rand() * 7) - 1) * DAY;
      if (r < 0.6) return BASE + Math.floor(rand() * 5 * 24) * HOUR + (rand() < 0.5 ? -1 : 1);
      return BASE - DAY + Math.floor(rand() * 7 * DAY);
    };
    const filters: (() => Filter)[] = [
      () => ({}),
      () => ({ event_type: pick(rand, TYPES) }),
      () => ({ event_types: [pick(rand, TYPES), pick(rand, TYPES)] }),
      () => ({ event_source: pick(rand, SOURCES) }),
      () => ({ event_category: pick(rand, CATEGORIES) }),
      () => ({ status: 'processed' }),
      () => ({ event_type: pick(rand, TYPES), event_source: pick(rand, SOURCES) }),
      () => ({ user_id: pick(rand, USERS) }),
      () => ({ stream_id: pick(rand, STREAMS) }),
    ];
    let mismatches: string[] = [];
    for (let i = 0; i < 160; i++) {
      let start = instant();
      let end = rand() < 0.25 ? start + Math.floor(rand() * 2 * HOUR) : instant();
      if (start > end) [start, end] = [end, start];
      const filter: Filter = { ...pick(rand, filters)() };
      const shape = rand();
      if (shape > 0.1) filter.start_time = iso(start);
      if (shape < 0.9) filter.end_time = iso(end);
      const want = expected(filter).length;
      const page = await queryEvents(t, { ...filter, limit: 1 });
      if (page.total !== want) mismatches.push(`${JSON.stringify(filter)}: got ${page.total}, want ${want}`);
      expect(page.has_more).toBe(want > 1);
    }
    expect(mismatches).toEqual([]);
    mismatches = [];
    // exactly whole hours and whole days, and one millisecond less
    for (const [from, to] of [
      [BASE, BASE + DAY - 1],
      [BASE, BASE + DAY],
      [BASE + HOUR, BASE + 3 * DAY + 5 * HOUR - 1],
      [BASE + HOUR, BASE + 3 * DAY + 5 * HOUR],
      [BASE - 1, BASE + 5 * DAY],
      [BASE + 90 * 60_000, BASE + 150 * 60_000],
    ] as const) {
      const filter = { start_time: iso(from), end_time: iso(to) };
      const page = await queryEvents(t, { ...filter, limit: 1 });
      const want = expected(filter).length;
      if (page.total !== want) mismatches.push(`${JSON.stringify(filter)}: got ${page.total}, want ${want}`);
    }
    expect(mismatches).toEqual([]);
  });

  async function walk(filter: Filter, limit: number, includeTotal = true): Promise<EventJson[]> {
    const seen: EventJson[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < N + 2; pages++) {
      const page: EventListJson = await queryEvents(t, {
        ...filter,
        limit,
        include_total: includeTotal,
        ...(cursor ? { cursor } : {}),
      });
      expect(page.events.length).toBeLessThanOrEqual(limit);
      expect(page.total).toBe(includeTotal ? expected(filter).length : null);
      seen.push(...page.events);
      expect(page.has_more).toBe(page.next_cursor !== null);
      if (!page.next_cursor) return seen;
      expect(page.events).toHaveLength(limit);
      cursor = page.next_cursor;
    }
    throw new Error('cursor pagination did not end');
  }

  it('walks every event exactly once, in order, with the cursor', async () => {
    const seen = await walk({}, 7);
    expect(seen.map((e) => e.event_id)).toEqual(all.map((e) => e.event_id));
    expect(new Set(seen.map((e) => e.event_id)).size).toBe(N);
  });

  it('walks a filtered range with the cursor, without totals too', async () => {
    const filter = {
      event_types: ['page.view', 'order.placed'],
      start_time: iso(BASE + 7 * HOUR + 123),
      end_time: iso(BASE + 3 * DAY + 2 * HOUR),
    };
    for (const [limit, includeTotal] of [
      [3, true],
      [1, false],
      [1000, true],
    ] as const) {
      const seen = await walk(filter, limit, includeTotal);
      expect(seen.map((e) => e.event_id)).toEqual(expected(filter).map((e) => e.event_id));
    }
  });

  it('refuses a cursor it did not issue with 422', async () => {
    for (const cursor of [
      'garbage!',
      Buffer.from('{}').toString('base64url'),
      Buffer.from('["not a date", 5]').toString('base64url'),
      Buffer.from('["2024-01-01T00:00:00Z", "5"]').toString('base64url'),
      Buffer.from('["2024-01-01T00:00:00Z", 1.5]').toString('base64url'),
    ]) {
      expect(validationPaths(await post(t, QUERY, { cursor })), cursor).toEqual(['body.cursor']);
    }
  });

  it('refuses a cursor together with an offset above 0 with 422', async () => {
    const first = await queryEvents(t, { limit: 5 });
    const res = await post(t, QUERY, { cursor: first.next_cursor, offset: 5 });
    expect(validationPaths(res)).toEqual(['body.offset']);
    const zero = await queryEvents(t, { cursor: first.next_cursor, offset: 0, limit: 5 });
    expect(zero.events.map((e) => e.event_id)).toEqual(all.slice(5, 10).map((e) => e.event_id));
  });

  it('answers total null with include_total false', async () => {
    const page = await queryEvents(t, { include_total: false, limit: 10, offset: 5 });
    expect(page).toMatchObject({ total: null, limit: 10, offset: 5, has_more: true });
    expect(page.events.map((e) => e.event_id)).toEqual(all.slice(5, 15).map((e) => e.event_id));
    const tail = await queryEvents(t, { include_total: false, limit: 10, offset: N - 10 });
    expect(tail).toMatchObject({ total: null, has_more: false, next_cursor: null });
  });
});

interface StatisticsJson {
  total_events: number;
  pending_events: number;
  processing_events: number;
  processed_events: number;
  failed_events: number;
  archived_events: number;
  events_by_source: Record<string, number>;
  events_by_category: Record<string, number>;
  events_by_type: Record<string, number>;
  events_by_status: Record<string, number>;
  events_today: number;
  events_this_week: number;
  events_this_month: number;
  average_processing_time: number;
  processing_rate: number;
  error_rate: number;
  top_users: { user_id: string; event_count: number }[];
  top_event_types: { event_type: string; event_count: number }[];
  user_id: string | null;
  start_time: string | null;
  end_time: string | null;
  generated_at: string;
}

const STATISTICS_FIELDS = [
  'total_events',
  'pending_events',
  'processing_events',
  'processed_events',
  'failed_events',
  'archived_events',
  'events_by_source',
  'events_by_category',
  'events_by_type',
  'events_by_status',
  'events_today',
  'events_this_week',
  'events_this_month',
  'average_processing_time',
  'processing_rate',
  'error_rate',
  'top_users',
  'top_event_types',
  'user_id',
  'start_time',
  'end_time',
  'generated_at',
].sort();

function countBy(events: EventJson[], key: (e: EventJson) => string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const event of events) {
    const k = key(event);
    if (k !== null) out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** Most first, then by name; the first ten. */
function top(counts: Record<string, number>): [string, number][] {
  return Object.entries(counts)
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, 10);
}

/** What the statistics of `events` (already filtered) must say, given when they were generated. */
function expectedStatistics(events: EventJson[], generatedAt: string) {
  const today = Math.floor(Date.parse(generatedAt) / DAY) * DAY;
  const since = (from: number) => events.filter((e) => Date.parse(e.timestamp) >= from).length;
  const status = (name: string) => events.filter((e) => e.status === name).length;
  // Same rounding as the service: a percentage with three decimals.
  const percent = (n: number) => (events.length === 0 ? 0 : Math.round((n / events.length) * 100_000) / 1000);
  return {
    total_events: events.length,
    pending_events: status('pending'),
    processing_events: status('processing'),
    processed_events: status('processed'),
    failed_events: status('failed'),
    archived_events: status('archived'),
    events_by_source: countBy(events, (e) => e.event_source),
    events_by_category: countBy(events, (e) => e.event_category),
    events_by_type: countBy(events, (e) => e.event_type),
    events_by_status: countBy(events, (e) => e.status),
    events_today: since(today),
    events_this_week: since(today - 7 * DAY),
    events_this_month: since(today - 30 * DAY),
    average_processing_time: 0,
    processing_rate: percent(status('processed')),
    error_rate: percent(status('failed')),
    top_users: top(countBy(events, (e) => e.user_id)).map(([user_id, event_count]) => ({
      user_id,
      event_count,
    })),
    top_event_types: top(countBy(events, (e) => e.event_type)).map(([event_type, event_count]) => ({
      event_type,
      event_count,
    })),
  };
}

describe.each(STORE_KINDS)('GET /api/v1/events/statistics (%s)', (kind) => {
  let t: TestApp;
  let all: EventJson[];
  let recent: Record<'now' | 'd3' | 'd20' | 'd60', EventJson[]>;
  const HISTORY = Date.parse('2001-05-01T00:00:00Z');
  const USERS = Array.from({ length: 13 }, (_, i) => `su-${String.fromCharCode(97 + i)}`);

  beforeAll(async () => {
    t = await startTestApp(kind);
    const now = Date.now();
    const rand = seededRandom(99);
    const body = (ts: number, i: number) => ({
      // skewed so that counts differ and some tie
      event_type: `stat.type${Math.floor(rand() * rand() * 14)}`,
      event_source: pick(rand, EVENT_SOURCES),
      event_category: pick(rand, EVENT_CATEGORIES.slice(0, 6)),
      user_id: rand() < 0.15 ? null : USERS[Math.floor(rand() * rand() * USERS.length)]!,
      data: { i },
      timestamp: iso(ts),
    });
    const group = async (ts: number, n: number) =>
      createEvents(
        t,
        Array.from({ length: n }, (_, i) => body(ts, i)),
      );
    recent = {
      now: await group(now, 7),
      d3: await group(now - 3 * DAY, 5),
      d20: await group(now - 20 * DAY, 4),
      d60: await group(now - 60 * DAY, 3),
    };
    const history = await createEvents(
      t,
      Array.from({ length: 400 }, (_, i) => {
        const r = rand();
        const ts =
          r < 0.15 ? HISTORY + Math.floor(rand() * 6 * 24) * HOUR : HISTORY + Math.floor(rand() * 6 * DAY);
        return body(ts, i);
      }),
    );
    all = [...Object.values(recent).flat(), ...history];
  });
  afterAll(async () => {
    await t?.close();
  });

  async function statistics(query = ''): Promise<StatisticsJson> {
    const res = await get(t, `${STATISTICS}${query}`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json<StatisticsJson>();
  }

  it('answers every field', async () => {
    const stats = await statistics();
    expect(Object.keys(stats).sort()).toEqual(STATISTICS_FIELDS);
    expect(stats).toMatchObject({ user_id: null, start_time: null, end_time: null });
    expect(Math.abs(Date.parse(stats.generated_at) - Date.now())).toBeLessThan(60_000);
  });

  it('counts all events by source, category, type and status; top users and types in order', async () => {
    const stats = await statistics();
    expect(stats).toMatchObject(expectedStatistics(all, stats.generated_at));
    expect(stats.total_events).toBe(all.length);
    expect(stats.top_users).toHaveLength(10);
    expect(stats.top_event_types).toHaveLength(10);
    const counts = stats.top_users.map((u) => u.event_count);
    expect([...counts].sort((a, b) => b - a)).toEqual(counts);
  });

  it('counts events of today, this week and this month', async () => {
    const stats = await statistics();
    const today = Math.floor(Date.parse(stats.generated_at) / DAY) * DAY;
    // What the groups must contribute, unless the run crossed midnight UTC.
    if (Date.parse(recent.now[0]!.timestamp) >= today) {
      expect(stats.events_today).toBe(recent.now.length);
      expect(stats.events_this_week).toBe(recent.now.length + recent.d3.length);
      expect(stats.events_this_month).toBe(recent.now.length + recent.d3.length + recent.d20.length);
    }
    expect(stats.events_today).toBe(expectedStatistics(all, stats.generated_at).events_today);
    expect(stats.events_this_week).toBe(expectedStatistics(all, stats.generated_at).events_this_week);
    expect(stats.events_this_month).toBe(expectedStatistics(all, stats.generated_at).events_this_month);
  });

  it('filters by user_id', async () => {
    for (const user of USERS) {
      const stats = await statistics(`?user_id=${user}`);
      const mine = all.filter((e) => e.user_id === user);
      expect(stats, user).toMatchObject(expectedStatistics(mine, stats.generated_at));
      expect(stats.user_id).toBe(user);
      expect(stats.top_users).toEqual(mine.length > 0 ? [{ user_id: user, event_count: mine.length }] : []);
    }
    const nobody = await statistics(`?user_id=${uid('nobody')}`);
    expect(nobody).toMatchObject({
      total_events: 0,
      events_by_type: {},
      top_users: [],
      top_event_types: [],
      processing_rate: 0,
      error_rate: 0,
    });
  });

  it('filters by start_time and end_time (inclusive), matching a brute-force count', async () => {
    const rand = seededRandom(5);
    const instant = (): number => {
      const r = rand();
      if (r < 0.25) return Date.parse(pick(rand, all).timestamp);
      if (r < 0.45) return HISTORY - DAY + Math.floor(rand() * 8 * 24) * HOUR;
      if (r < 0.55) return HISTORY + (Math.floor(rand() * 8) - 1) * DAY;
      if (r < 0.6) return Date.now() - Math.floor(rand() * 70 * DAY);
      return HISTORY - DAY + Math.floor(rand() * 8 * DAY);
    };
    const mismatches: string[] = [];
    for (let i = 0; i < 60; i++) {
      let start = instant();
      let end = rand() < 0.2 ? start + Math.floor(rand() * 3 * HOUR) : instant();
      if (start > end) [start, end] = [end, start];
      const params = new URLSearchParams();
      const shape = rand();
      if (shape > 0.1) params.set('start_time', iso(start));
      if (shape < 0.9) params.set('end_time', iso(end));
      const user = rand() < 0.3 ? pick(rand, USERS) : undefined;
      if (user) params.set('user_id', user);
      const stats = await statistics(`?${params.toString()}`);
      const filter = Object.fromEntries(params);
      const inRange = all.filter((e) => matches(e, filter));
      const want = expectedStatistics(inRange, stats.generated_at);
      const got = Object.fromEntries(Object.keys(want).map((k) => [k, stats[k as keyof StatisticsJson]]));
      try {
        expect(got).toEqual(want);
      } catch {
        mismatches.push(`${params.toString()}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
      }
      expect(stats.start_time).toBe(params.has('start_time') ? iso(start) : null);
      expect(stats.end_time).toBe(params.has('end_time') ? iso(end) : null);
    }
    expect(mismatches).toEqual([]);
  });

  it.each<[string, string]>([
    ['end before start', '?start_time=2024-01-02T00:00:00Z&end_time=2024-01-01T00:00:00Z'],
    ['a bad start_time', '?start_time=yesterday'],
    ['a bad end_time', '?end_time=2024-02-30T00:00:00Z'],
    ['an unknown parameter', '?colour=red'],
    ['an empty user_id', '?user_id='],
  ])('answers 422 for %s', async (_name, query) => {
    const paths = validationPaths(await get(t, `${STATISTICS}${query}`));
    expect(paths.length).toBeGreaterThan(0);
    for (const path of paths) expect(path).toMatch(/^query\./);
  });

  it('names query.end_time when end is before start', async () => {
    const res = await get(t, `${STATISTICS}?start_time=2024-01-02T00:00:00Z&end_time=2024-01-01T00:00:00Z`);
    expect(validationPaths(res)).toEqual(['query.end_time']);
    expect(res.json<ErrorJson>().detail).toContain('end_time');
  });
});
