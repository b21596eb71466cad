/**
 * GET /api/v1/events/projections/{entity_type}/{entity_id}: the default projection, current and as
 * of a version or a time, across snapshot boundaries (SNAPSHOT_EVERY=10 here), read-your-writes
 * under concurrent appends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDefaultProjection } from '../store/projections.js';
import { STORE_KINDS, startTestApp, type TestApp } from '../test-support/app.js';
import {
  createEvent,
  createEvents,
  get,
  uid,
  validationPaths,
  type EventJson,
} from '../test-support/http.js';

interface ProjectionJson {
  projection_id: string;
  projection_name: string;
  entity_type: string;
  entity_id: string;
  state: Record<string, unknown>;
  version: number;
  last_event_id: string;
  created_at: string;
  updated_at: string;
}

const url = (type: string, id: string, query = '') =>
  `/api/v1/events/projections/${encodeURIComponent(type)}/${encodeURIComponent(id)}${query}`;

/** The seed's rule, folded by brute force over the first `version` events. */
function expected(events: EventJson[], version: number): Record<string, unknown> {
  const state: Record<string, unknown> = {};
  for (const event of events.slice(0, version)) state[event.event_type] = event.data;
  return state;
}

describe.each(STORE_KINDS)('GET /api/v1/events/projections/{entity_type}/{entity_id} (%s)', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(kind, { SNAPSHOT_EVERY: '10' });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function projection(type: string, id: string, query = ''): Promise<ProjectionJson> {
    const res = await get(t, url(type, id, query));
    expect(res.statusCode, res.body).toBe(200);
    return res.json<ProjectionJson>();
  }

  /** `n` events of one stream, with types cycling over four and increasing timestamps. */
  async function stream(n: number) {
    const id = uid('cart');
    const base = Date.parse('2024-03-01T00:00:00Z');
    const events = await createEvents(
      t,
      Array.from({ length: n }, (_, i) => ({
        event_type: `cart.t${i % 4}`,
        entity_type: 'cart',
        entity_id: id,
        data: { i },
        timestamp: new Date(base + i * 60_000).toISOString(),
      })),
      7,
    );
    return { id, events, base };
  }

  it('answers 404 for an entity without events', async () => {
    const res = await get(t, url('cart', uid('none')));
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'not_found' });
  });

  it('folds the seed rule: the latest data per event type, version = events applied', async () => {
    const { id, events } = await stream(6);
    const read = await projection('cart', id);
    expect(read).toEqual({
      projection_id: `default:cart:${id}`,
      projection_name: 'default',
      entity_type: 'cart',
      entity_id: id,
      state: expected(events, 6),
      version: 6,
      last_event_id: events[5]!.event_id,
      created_at: expect.any(String),
      updated_at: events[5]!.created_at,
    });
    expect(read.state).toEqual({
      'cart.t0': { i: 4 },
      'cart.t1': { i: 5 },
      'cart.t2': { i: 2 },
      'cart.t3': { i: 3 },
    });
  });

  it('reads any past version across snapshot boundaries, equal to a fold from the start', async () => {
    const { id, events } = await stream(35);
    // In an order that makes reads start from snapshots written by earlier reads, and without.
    for (const version of [35, 1, 9, 10, 11, 20, 19, 21, 29, 30, 31, 34, 25]) {
      const read = await projection('cart', id, `?as_of_version=${version}`);
      expect({ version: read.version, state: read.state }).toEqual({
        version,
        state: expected(events, version),
      });
      expect(read.last_event_id).toBe(events[version - 1]!.event_id);
    }
    // Beyond the current version: the current state.
    expect((await projection('cart', id, '?as_of_version=500')).version).toBe(35);
    const snapshots = await t.db.query<{ version: number }>(
      `SELECT version FROM event.projection_snapshots WHERE stream_id = $1 ORDER BY version`,
      [`cart:${id}`],
    );
    expect(snapshots.rows.map((row) => row.version)).toEqual([10, 20, 30]);
    // Once snapshots exist, a read folds fewer than SNAPSHOT_EVERY events.
    for (const version of [10, 19, 35]) {
      const direct = await readDefaultProjection(t.db, `cart:${id}`, { asOfVersion: version }, 10);
      expect(direct!.folded_events).toBeLessThan(10);
      expect(direct!.state).toEqual(expected(events, version));
    }
  });

  it('reads the state as of a time: the newest version whose event timestamp is at or before it', async () => {
    const { id, base } = await stream(12);
    const at = (minutes: number) => encodeURIComponent(new Date(base + minutes * 60_000).toISOString());
    expect((await projection('cart', id, `?as_of=${at(0)}`)).version).toBe(1);
    expect((await projection('cart', id, `?as_of=${at(4.5)}`)).version).toBe(5);
    expect((await projection('cart', id, `?as_of=${at(11)}`)).version).toBe(12);
    expect((await projection('cart', id, `?as_of=${at(600)}`)).version).toBe(12);
    // Both: the earlier of the two.
    expect((await projection('cart', id, `?as_of=${at(8)}&as_of_version=3`)).version).toBe(3);
    const before = await get(t, url('cart', id, `?as_of=${at(-1)}`));
    expect(before.statusCode).toBe(404);
  });

  it('reflects every event acknowledged before the request, under concurrent appends', async () => {
    const id = uid('busy');
    const writers = Array.from({ length: 4 }, (_, w) =>
      (async () => {
        for (let i = 0; i < 15; i++) {
          const event = await createEvent(t, {
            event_type: `w${w}`,
            entity_type: 'busy',
            entity_id: id,
            data: { i },
          });
          const read = await projection('busy', id);
          expect(read.version).toBeGreaterThanOrEqual(event.stream_version!);
          expect((read.state[`w${w}`] as { i: number }).i).toBeGreaterThanOrEqual(i);
        }
      })(),
    );
    await Promise.all(writers);
    const final = await projection('busy', id);
    expect(final.version).toBe(60);
    expect(final.state).toEqual({ w0: { i: 14 }, w1: { i: 14 }, w2: { i: 14 }, w3: { i: 14 } });
  });

  it.each<[string, string]>([
    ['?as_of_version=0', 'query.as_of_version'],
    ['?as_of_version=x', 'query.as_of_version'],
    ['?as_of=yesterday', 'query.as_of'],
    ['?colour=red', 'query.colour'],
  ])('answers 422 for %s', async (query, path) => {
    expect(validationPaths(await get(t, url('cart', 'c-1', query)))).toContain(path);
  });

  it('answers 422 for an entity type with a colon', async () => {
    expect(validationPaths(await get(t, url('a:b', 'c-1')))).toContain('path.entity_type');
  });
});
