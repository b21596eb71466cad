/**
 * Declared projections over HTTP on PostgreSQL and PGlite, with the background workers running:
 * registration (validation, 409, `event.projection.created` published), every operation, reads
 * by name that include every acknowledged event (also under concurrent appends and while the
 * projector computes existing events), past states, list/get/delete, rebuild equal to the
 * incremental states; and on PostgreSQL two projectors on one database, one projecting at a time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_STREAM } from '../bus/envelope.js';
import { createMemoryBus } from '../bus/memory.js';
import type { Db } from '../store/db.js';
import { createPgDb } from '../store/pg.js';
import { readStreamPage } from '../store/projection-log.js';
import { STORE_KINDS, startTestApp, type TestApp } from '../test-support/app.js';
import {
  createEvent,
  createEvents,
  get,
  post,
  uid,
  validationPaths,
  type ErrorJson,
} from '../test-support/http.js';
import { waitFor, waitUntil } from '../test-support/wait.js';
import { createDeclaredProjections } from './declared.js';
import { startProjector, type Projector } from './projector.js';
import { compileReducer, foldEvents, startPoint, type HandlerSpec } from './reducer-dsl.js';

const BASE = '/api/v1/events/projections';

interface DefinitionJson {
  definition_id: string;
  name: string;
  entity_type: string;
  description: string | null;
  initial_state: Record<string, unknown>;
  handlers: unknown[];
  generation: number;
  status: 'rebuilding' | 'live';
  progress: {
    processed_position: number;
    start_position: number;
    target_position: number;
    head_position: number;
    events_applied: number;
    percent: number;
    started_at: string;
    finished_at: string | null;
  };
  created_at: string;
  updated_at: string;
}

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

/** A cart summary using every operation; `cart.>` runs after the others. */
const CART_HANDLERS = [
  {
    event_type: 'cart.created',
    operations: [
      { op: 'set', path: 'owner', from: 'user_id' },
      { op: 'set', path: 'status', value: 'open' },
    ],
  },
  {
    event_type: 'cart.item_added',
    operations: [
      { op: 'append', path: 'items', from: 'data.sku', max_length: 3 },
      { op: 'increment', path: 'count' },
      { op: 'increment', path: 'total', from: 'data.price' },
    ],
  },
  {
    event_type: 'cart.item_removed',
    operations: [
      { op: 'increment', path: 'count', by: -1 },
      { op: 'remove', path: 'coupon' },
    ],
  },
  { event_type: 'cart.coupon', operations: [{ op: 'set', path: 'coupon', from: 'data.code' }] },
  { event_type: 'cart.address', operations: [{ op: 'merge', path: 'address', from: 'data' }] },
  {
    event_type: 'cart.checked_out',
    operations: [{ op: 'merge' }, { op: 'set', path: 'status', value: 'done' }],
  },
  { event_type: 'cart.deleted', operations: [{ op: 'delete' }] },
  { event_type: 'cart.>', operations: [{ op: 'set', path: 'last_type', from: 'event_type' }] },
];
const CART_INITIAL = { items: [], count: 0 };

describe.each(STORE_KINDS)('declared projections (%s)', (kind) => {
  let t: TestApp;
  const bus = createMemoryBus();

  beforeAll(async () => {
    await bus.ensureStream({ name: EVENT_STREAM, subjects: ['event.>'] });
    t = await startTestApp(
      kind,
      { PROJECTION_POLL_MS: '20', PROJECTION_BATCH_SIZE: '40' },
      { bus, workers: true },
    );
  });
  afterAll(async () => {
    await t?.close();
  });

  async function register(body: Record<string, unknown>): Promise<DefinitionJson> {
    const res = await post(t, BASE, body);
    expect(res.statusCode, res.body).toBe(201);
    return res.json<DefinitionJson>();
  }

  async function definition(name: string): Promise<DefinitionJson> {
    const res = await get(t, `${BASE}/${name}`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json<DefinitionJson>();
  }

  /** Until the projector has applied every stored event (the definition is live and at the head). */
  async function caughtUp(name: string): Promise<DefinitionJson> {
    return waitFor(`projection ${name} to catch up`, async () => {
      const def = await definition(name);
      const head = await t.db.query<{ p: number }>(
        'SELECT coalesce(max(position), 0) AS p FROM event.events',
      );
      return def.status === 'live' && def.progress.processed_position >= head.rows[0]!.p ? def : undefined;
    });
  }

  async function read(type: string, id: string, query: string) {
    return get(t, `${BASE}/${encodeURIComponent(type)}/${encodeURIComponent(id)}${query}`);
  }

  async function projection(type: string, id: string, query: string): Promise<ProjectionJson> {
    const res = await read(type, id, query);
    expect(res.statusCode, res.body).toBe(200);
    return res.json<ProjectionJson>();
  }

  async function rows(name: string) {
    const result = await t.db.query<{
      stream_id: string;
      generation: number;
      version: number;
      state: unknown;
    }>(
      `SELECT stream_id, generation, version, state FROM event.projection_states
       WHERE projection_name = $1 ORDER BY stream_id`,
      [name],
    );
    return result.rows;
  }

  it('registers: 201 with the definition, live at once for a type without events, published', async () => {
    const name = uid('summary');
    const type = uid('cart');
    const created = await register({
      name,
      entity_type: type,
      description: 'cart summary',
      initial_state: CART_INITIAL,
      handlers: CART_HANDLERS,
    });
    expect(created).toMatchObject({
      name,
      entity_type: type,
      description: 'cart summary',
      initial_state: CART_INITIAL,
      handlers: CART_HANDLERS,
      generation: 1,
      status: 'live',
      progress: { events_applied: 0, percent: 100 },
    });
    expect(created.definition_id).toMatch(/^prj_/);
    expect(created.progress.finished_at).not.toBeNull();

    const outbox = await t.db.query<{ subject: string; payload: Record<string, unknown> }>(
      'SELECT subject, payload FROM event.outbox WHERE msg_id = $1',
      [`projection-created-${created.definition_id}`],
    );
    expect(outbox.rows).toHaveLength(1);
    const message = await waitFor('event.projection.created on the bus', () =>
      bus
        .streamMessages(EVENT_STREAM)
        .find(
          (m) =>
            m.subject === 'event.projection.created' &&
            (JSON.parse(Buffer.from(m.data).toString()) as { data: { name: string } }).data.name === name,
        ),
    );
    expect(JSON.parse(Buffer.from(message.data).toString())).toMatchObject({
      id: `projection-created-${created.definition_id}`,
      type: 'event.projection.created',
      source: 'event_service',
      data: {
        definition_id: created.definition_id,
        name,
        entity_type: type,
        event_types: CART_HANDLERS.map((h) => h.event_type),
      },
    });
  });

  it('applies every operation; a read right after each acknowledged append includes it', async () => {
    const name = uid('summary');
    const type = uid('cart');
    await register({ name, entity_type: type, initial_state: CART_INITIAL, handlers: CART_HANDLERS });
    const id = uid('c');
    const steps: [string, Record<string, unknown>, Record<string, unknown>][] = [
      ['cart.created', {}, { owner: 'u-7', status: 'open', last_type: 'cart.created' }],
      ['cart.item_added', { sku: 'a', price: 10 }, { items: ['a'], count: 1, total: 10 }],
      ['cart.item_added', { sku: 'b', price: 2.5 }, { items: ['a', 'b'], count: 2, total: 12.5 }],
      ['cart.coupon', { code: 'X1' }, { coupon: 'X1', last_type: 'cart.coupon' }],
      ['cart.item_added', { sku: 'c', price: 1 }, { items: ['a', 'b', 'c'], count: 3, total: 13.5 }],
      // No price: the increment by a missing field changes nothing; the list keeps the newest 3.
      ['cart.item_added', { sku: 'd' }, { items: ['b', 'c', 'd'], count: 4, total: 13.5 }],
      ['cart.item_removed', {}, { count: 3, coupon: undefined }],
      ['cart.address', { city: 'Oslo', zip: '0150' }, { address: { city: 'Oslo', zip: '0150' } }],
      ['cart.checked_out', { paid: true, total: 99 }, { paid: true, total: 99, status: 'done' }],
    ];
    let expected: Record<string, unknown> = { ...CART_INITIAL };
    for (const [i, [eventType, data, change]] of steps.entries()) {
      const event = await createEvent(t, {
        event_type: eventType,
        entity_type: type,
        entity_id: id,
        user_id: 'u-7',
        data,
      });
      expected = { ...expected, ...change, last_type: eventType };
      for (const [key, value] of Object.entries(change)) if (value === undefined) delete expected[key];
      const read = await projection(type, id, `?name=${name}`);
      expect(read.state).toEqual(expected);
      expect(read).toMatchObject({
        projection_id: `${name}:${type}:${id}`,
        projection_name: name,
        entity_type: type,
        entity_id: id,
        version: i + 1,
        last_event_id: event.event_id,
        updated_at: event.created_at,
      });
    }
    expect(expected).toEqual({
      items: ['b', 'c', 'd'],
      count: 3,
      total: 99,
      owner: 'u-7',
      status: 'done',
      address: { city: 'Oslo', zip: '0150' },
      paid: true,
      last_type: 'cart.checked_out',
    });
    // Once the projector has caught up, the read is the stored row.
    await caughtUp(name);
    const [row] = (await rows(name)).filter((r) => r.stream_id === `${type}:${id}`);
    expect(row).toMatchObject({ version: 9, state: expected, generation: 1 });
    // Without a name (or with `default`), the default projection as before.
    for (const query of ['', '?name=default']) {
      const fallback = await projection(type, id, query);
      expect(fallback.projection_name).toBe('default');
      expect(fallback.state['cart.coupon']).toEqual({ code: 'X1' });
    }
  });

  it('delete: the entity reads as 404 until a later event matches a handler again', async () => {
    const name = uid('summary');
    const type = uid('cart');
    await register({ name, entity_type: type, initial_state: CART_INITIAL, handlers: CART_HANDLERS });
    const id = uid('c');
    const append = (event_type: string, data = {}) =>
      createEvent(t, { event_type, entity_type: type, entity_id: id, user_id: 'u-1', data });
    await append('cart.item_added', { sku: 'a', price: 1 });
    const deleting = await append('cart.deleted');
    const gone = await read(type, id, `?name=${name}`);
    expect(gone.statusCode).toBe(404);
    expect(gone.json<ErrorJson>().detail).toContain(`was deleted by event ${deleting.event_id} (version 2)`);
    await append('cart.created');
    expect((await projection(type, id, `?name=${name}`)).state).toEqual({
      ...CART_INITIAL,
      owner: 'u-1',
      status: 'open',
      last_type: 'cart.created',
    });
    await caughtUp(name);
    expect((await projection(type, id, `?name=${name}`)).version).toBe(3);
  });

  it('answers 422 naming every problem of a definition', async () => {
    const type = uid('cart');
    const semantic = await post(t, BASE, {
      name: uid('bad'),
      entity_type: type,
      initial_state: { note: 'x'.repeat(70_000) },
      handlers: [
        {
          event_type: 'cart..created',
          operations: [
            { op: 'set', path: 'a.__proto__.b', value: 1 },
            { op: 'set', path: 'a' },
            { op: 'merge', from: 'user_id' },
            { op: 'delete' },
            { op: 'increment', path: 'n' },
          ],
        },
        { event_type: 'cart.x', operations: [{ op: 'append', path: 'l', from: 'status' }] },
      ],
    });
    expect(validationPaths(semantic)).toEqual([
      'body.handlers[0].event_type',
      'body.handlers[0].operations[0].path',
      'body.handlers[0].operations[1]',
      'body.handlers[0].operations[2].from',
      'body.handlers[0].operations[3]',
      'body.handlers[1].operations[0].from',
      'body.initial_state',
    ]);
    const shape = await post(t, BASE, {
      name: 'has space',
      entity_type: 'a:b',
      handlers: [{ event_type: 'x', operations: [{ op: 'upsert', path: 'a', extra: 1 }] }],
    });
    expect(validationPaths(shape)).toEqual(
      expect.arrayContaining([
        'body.name',
        'body.entity_type',
        'body.handlers[0].operations[0].op',
        'body.handlers[0].operations[0].extra',
      ]),
    );
    expect(
      validationPaths(await post(t, BASE, { name: 'default', entity_type: type, handlers: CART_HANDLERS })),
    ).toEqual(['body.name']);
    expect(validationPaths(await post(t, BASE, { name: uid('x'), entity_type: type }))).toContain(
      'body.handlers',
    );
    expect(validationPaths(await read(type, 'c-1', '?name=bad%20name'))).toContain('query.name');
    const huge = await post(t, BASE, {
      name: uid('huge'),
      entity_type: type,
      handlers: [{ event_type: 'x', operations: [{ op: 'set', path: 'a', value: 'x'.repeat(300_000) }] }],
    });
    expect(huge.statusCode).toBe(413);
    // Nothing was stored.
    const stored = await t.db.query('SELECT 1 FROM event.projection_definitions WHERE entity_type = $1', [
      type,
    ]);
    expect(stored.rows).toHaveLength(0);
  });

  it('answers 409 for a taken name, 404 for unknown names, other entity types and entities without events', async () => {
    const name = uid('summary');
    const type = uid('cart');
    await register({ name, entity_type: type, handlers: CART_HANDLERS });
    const again = await post(t, BASE, { name, entity_type: uid('other'), handlers: CART_HANDLERS });
    expect(again.statusCode).toBe(409);
    expect(again.json<ErrorJson>()).toMatchObject({ code: 'conflict' });

    const unknown = uid('nope');
    for (const res of [
      await get(t, `${BASE}/${unknown}`),
      await t.app.http.inject({ method: 'DELETE', url: `${BASE}/${unknown}` }),
      await post(t, `${BASE}/${unknown}/rebuild`, {}),
      await read(type, 'c-1', `?name=${unknown}`),
    ]) {
      expect(res.statusCode, res.body).toBe(404);
      expect(res.json<ErrorJson>().detail).toBe(`Projection not found: ${unknown}`);
    }
    await createEvent(t, { event_type: 'cart.created', entity_type: 'elsewhere', entity_id: 'e-1' });
    const mismatch = await read('elsewhere', 'e-1', `?name=${name}`);
    expect(mismatch.statusCode).toBe(404);
    expect(mismatch.json<ErrorJson>().detail).toBe(
      `Projection ${name} is defined for entity type ${type}, not elsewhere`,
    );
    const empty = await read(type, uid('none'), `?name=${name}`);
    expect(empty.statusCode).toBe(404);
    expect(empty.json<ErrorJson>().detail).toMatch(/^No events for entity /);
  });

  it('lists, gets and deletes definitions; a delete takes the states with it', async () => {
    const type = uid('cart');
    const [a, b] = [uid('a-summary'), uid('b-summary')];
    await register({ name: a, entity_type: type, handlers: CART_HANDLERS });
    await register({ name: b, entity_type: type, handlers: CART_HANDLERS.slice(0, 2) });
    await createEvent(t, { event_type: 'cart.created', entity_type: type, entity_id: 'c-1', user_id: 'u' });
    await caughtUp(a);
    await caughtUp(b);
    expect(await rows(a)).toHaveLength(1);

    const all = await get(t, BASE);
    expect(all.statusCode).toBe(200);
    expect(all.json<DefinitionJson[]>().map((d) => d.name)).toEqual(expect.arrayContaining([a, b]));
    const filtered = await get(t, `${BASE}?entity_type=${type}`);
    expect(filtered.json<DefinitionJson[]>().map((d) => d.name)).toEqual([a, b]);
    expect((await definition(b)).handlers).toEqual(CART_HANDLERS.slice(0, 2));

    const deleted = await t.app.http.inject({ method: 'DELETE', url: `${BASE}/${a}` });
    expect(deleted.statusCode).toBe(200);
    expect(deleted.json()).toEqual({ status: 'deleted', name: a });
    expect((await get(t, `${BASE}/${a}`)).statusCode).toBe(404);
    expect(await rows(a)).toHaveLength(0);
    expect((await read(type, 'c-1', `?name=${a}`)).statusCode).toBe(404);
    expect((await get(t, `${BASE}?entity_type=${type}`)).json<DefinitionJson[]>().map((d) => d.name)).toEqual(
      [b],
    );
    // The name is free again.
    await register({ name: a, entity_type: type, handlers: CART_HANDLERS });
    expect((await caughtUp(a)).progress.events_applied).toBe(1);
  });

  /** Events over `streams` streams of `type`, interleaved, `perStream` each (atomic batches). */
  async function seed(type: string, streams: number, perStream: number) {
    const types = [
      'cart.created',
      'cart.item_added',
      'cart.item_added',
      'cart.coupon',
      'cart.item_removed',
      'cart.address',
    ];
    const bodies = [];
    for (let round = 0; round < perStream; round++) {
      for (let s = 0; s < streams; s++) {
        const eventType =
          round === perStream - 1 && s % 5 === 0 ? 'cart.deleted' : types[(round + s) % types.length]!;
        bodies.push({
          event_type: eventType,
          entity_type: type,
          entity_id: `c-${s}`,
          user_id: `u-${s % 3}`,
          data: { sku: `s-${round}`, price: (round * 7 + s) % 11, code: `k${s}`, city: `c${round}` },
        });
      }
    }
    return createEvents(t, bodies, 97);
  }

  it('registering over existing events computes them in the background; reads are exact meanwhile', async () => {
    const type = uid('cart');
    const events = await seed(type, 12, 8);
    const name = uid('summary');
    const created = await register({
      name,
      entity_type: type,
      initial_state: CART_INITIAL,
      handlers: CART_HANDLERS,
    });
    expect(created.status).toBe('rebuilding');
    expect(created.progress.start_position).toBe(events[0]!.position - 1);
    expect(created.progress.target_position).toBeGreaterThanOrEqual(events[events.length - 1]!.position);
    // Exact before the projector is done (folded from the log), equal to the stored rows after.
    const before = await projection(type, 'c-1', `?name=${name}`);
    expect(before.version).toBe(8);
    const live = await caughtUp(name);
    expect(live.progress).toMatchObject({ events_applied: 96, percent: 100 });
    expect(live.progress.finished_at).not.toBeNull();
    const stored = await rows(name);
    expect(stored).toHaveLength(12);
    for (const row of stored) expect(row.version).toBe(8);
    expect(stored.find((r) => r.stream_id === `${type}:c-1`)!.state).toEqual(before.state);
    // Streams whose last event was `cart.deleted` are stored as deleted.
    expect(
      stored
        .filter((r) => r.state === null)
        .map((r) => r.stream_id)
        .sort(),
    ).toEqual([`${type}:c-0`, `${type}:c-10`, `${type}:c-5`]);
  });

  it('a rebuild recomputes every state equal to the incremental one; reads stay exact during it', async () => {
    const type = uid('cart');
    const name = uid('summary');
    await register({ name, entity_type: type, initial_state: CART_INITIAL, handlers: CART_HANDLERS });
    // Appended while the definition is live: the projector applies them as they come.
    await Promise.all([seed(type, 20, 6), seed(type, 20, 6)]);
    await caughtUp(name);
    const incremental = await rows(name);
    expect(incremental).toHaveLength(20);
    for (const row of incremental) expect(row).toMatchObject({ generation: 1, version: 12 });

    const res = await post(t, `${BASE}/${name}/rebuild`, {});
    expect(res.statusCode, res.body).toBe(202);
    const rebuilding = res.json<DefinitionJson>();
    expect(rebuilding).toMatchObject({
      generation: 2,
      status: 'rebuilding',
      progress: { events_applied: 0 },
    });
    for (const id of ['c-1', 'c-2', 'c-3']) {
      const read = await projection(type, id, `?name=${name}`);
      expect(read.version).toBe(12);
      expect(read.state).toEqual(incremental.find((r) => r.stream_id === `${type}:${id}`)!.state);
    }
    const done = await caughtUp(name);
    expect(done).toMatchObject({
      generation: 2,
      status: 'live',
      progress: { events_applied: 240, percent: 100 },
    });
    const rebuilt = await rows(name);
    expect(rebuilt.map((r) => ({ ...r, generation: 1 }))).toEqual(incremental);
    for (const row of rebuilt) expect(row.generation).toBe(2);
  });

  it('appends during a rebuild: every row ends equal to a fold of its whole stream', async () => {
    const type = uid('cart');
    const name = uid('summary');
    await register({ name, entity_type: type, initial_state: CART_INITIAL, handlers: CART_HANDLERS });
    await seed(type, 15, 6);
    await caughtUp(name);
    const res = await post(t, `${BASE}/${name}/rebuild`, {});
    expect(res.statusCode, res.body).toBe(202);
    await Promise.all([seed(type, 15, 4), seed(type, 15, 4), seed(type, 15, 4)]);
    const done = await caughtUp(name);
    expect(done.progress.events_applied).toBe(15 * 18);
    const reducer = compileReducer(CART_HANDLERS as HandlerSpec[], CART_INITIAL);
    const stored = await rows(name);
    expect(stored).toHaveLength(15);
    for (const row of stored) {
      const events = await readStreamPage(t.db, row.stream_id, 0, 1000, 1000);
      const folded = foldEvents(reducer, startPoint(reducer), events);
      expect({ generation: row.generation, version: row.version, state: row.state }).toEqual({
        generation: 2,
        version: 18,
        state: folded.state,
      });
    }
  });

  it('reads fold what the projector has not applied: rows behind, missing or of an older generation', async () => {
    const type = uid('cart');
    const name = uid('summary');
    await register({ name, entity_type: type, initial_state: CART_INITIAL, handlers: CART_HANDLERS });
    await seed(type, 4, 10);
    await caughtUp(name);
    // Small pages, so that a read folds several.
    const service = createDeclaredProjections({ db: t.db, now: () => new Date(), readPageSize: 4 });
    const current = await Promise.all(['c-1', 'c-2', 'c-3'].map((id) => service.read(name, type, id, {})));
    for (const read of current) expect(read.folded_events).toBe(0);
    const atThree = await service.read(name, type, 'c-1', { asOfVersion: 3 });
    expect(atThree.folded_events).toBe(3);
    // As if the projector lagged (c-1 at version 3), had not reached c-2, or were rebuilding (c-3).
    await t.db.query(
      `UPDATE event.projection_states SET version = 3, state = $3::jsonb, last_event_id = $4
       WHERE projection_name = $1 AND stream_id = $2`,
      [name, `${type}:c-1`, JSON.stringify(atThree.state), atThree.last_event_id],
    );
    await t.db.query('DELETE FROM event.projection_states WHERE projection_name = $1 AND stream_id = $2', [
      name,
      `${type}:c-2`,
    ]);
    await t.db.query(
      `UPDATE event.projection_states SET generation = 0, state = '{"stale": true}'
       WHERE projection_name = $1 AND stream_id = $2`,
      [name, `${type}:c-3`],
    );
    const again = await Promise.all(['c-1', 'c-2', 'c-3'].map((id) => service.read(name, type, id, {})));
    expect(again.map((read) => read.folded_events)).toEqual([7, 10, 10]);
    expect(again.map(({ folded_events: _, ...rest }) => rest)).toEqual(
      current.map(({ folded_events: _, ...rest }) => rest),
    );
  });

  it('reflects every event acknowledged before the request, under concurrent appends', async () => {
    const type = uid('busy');
    const name = uid('counts');
    await register({
      name,
      entity_type: type,
      handlers: [
        {
          event_type: 'w.*',
          operations: [
            { op: 'increment', path: 'n' },
            { op: 'set', path: 'last', from: 'data' },
          ],
        },
      ],
    });
    const id = uid('b');
    const writers = Array.from({ length: 4 }, (_, w) =>
      (async () => {
        for (let i = 0; i < 15; i++) {
          const event = await createEvent(t, {
            event_type: `w.${w}`,
            entity_type: type,
            entity_id: id,
            data: { w, i },
          });
          const read = await projection(type, id, `?name=${name}`);
          expect(read.version).toBeGreaterThanOrEqual(event.stream_version!);
          expect(read.state.n).toBe(read.version);
        }
      })(),
    );
    await Promise.all(writers);
    const final = await projection(type, id, `?name=${name}`);
    expect(final.version).toBe(60);
    expect(final.state.n).toBe(60);
  });

  it('reads past states by version and by time, from the stored row or from the start', async () => {
    const type = uid('cart');
    const name = uid('summary');
    await register({ name, entity_type: type, initial_state: CART_INITIAL, handlers: CART_HANDLERS });
    const id = uid('c');
    const base = Date.parse('2024-03-01T00:00:00Z');
    await createEvents(
      t,
      Array.from({ length: 12 }, (_, i) => ({
        event_type: 'cart.item_added',
        entity_type: type,
        entity_id: id,
        data: { sku: `s${i}`, price: 1 },
        timestamp: new Date(base + i * 60_000).toISOString(),
      })),
    );
    await caughtUp(name);
    const at = async (query: string) => projection(type, id, `?name=${name}&${query}`);
    expect((await at('as_of_version=5')).state).toMatchObject({ count: 5, items: ['s2', 's3', 's4'] });
    expect((await at('as_of_version=12')).state).toMatchObject({ count: 12 });
    expect((await at('as_of_version=500')).version).toBe(12);
    const time = encodeURIComponent(new Date(base + 3.5 * 60_000).toISOString());
    expect(await at(`as_of=${time}`)).toMatchObject({ version: 4, state: { count: 4 } });
    const before = encodeURIComponent(new Date(base - 60_000).toISOString());
    expect((await read(type, id, `?name=${name}&as_of=${before}`)).statusCode).toBe(404);
  });
});

describe('declared projections on two instances of one database (postgres)', () => {
  let t: TestApp;
  let otherDb: Db;
  let other: Projector;

  beforeAll(async () => {
    t = await startTestApp(
      'postgres',
      { PROJECTION_POLL_MS: '20', PROJECTION_BATCH_SIZE: '50' },
      { workers: true },
    );
    otherDb = createPgDb({ connectionString: t.url!, poolSize: 2, statementTimeoutMs: 30_000 });
    other = startProjector({ db: otherDb, pollMs: 20, leaseRetryMs: 50, batchSize: 50 });
  });
  afterAll(async () => {
    await other?.stop();
    await otherDb?.close();
    await t?.close();
  });

  it('one projects while the other stands by; the other takes over when it stops; states stay exact', async () => {
    const mine = t.workers!.projector;
    await waitUntil('one leader', () => mine.stats().leader !== other.stats().leader);
    const [leader, standby] = mine.stats().leader ? [mine, other] : [other, mine];
    const type = uid('cart');
    const name = uid('summary');
    const res = await post(t, BASE, {
      name,
      entity_type: type,
      initial_state: CART_INITIAL,
      handlers: CART_HANDLERS,
    });
    expect(res.statusCode, res.body).toBe(201);
    const append = (n: number, from: number) =>
      createEvents(
        t,
        Array.from({ length: n }, (_, i) => ({
          event_type: 'cart.item_added',
          entity_type: type,
          entity_id: `c-${(from + i) % 10}`,
          data: { sku: `s${from + i}`, price: 2 },
        })),
      );
    const counts = async () =>
      (
        await t.db.query<{ version: number; count: number }>(
          `SELECT version, (state->>'count')::int AS count FROM event.projection_states WHERE projection_name = $1`,
          [name],
        )
      ).rows;
    await append(200, 0);
    await waitUntil(
      '20 per stream',
      async () => (await counts()).filter((r) => r.version === 20).length === 10,
    );
    expect(standby.stats().eventsApplied).toBe(0);
    expect(leader.stats().eventsApplied).toBeGreaterThanOrEqual(200);

    await leader.stop();
    await waitUntil('the other takes over', () => standby.stats().leader);
    await append(100, 200);
    await waitUntil(
      '30 per stream',
      async () => (await counts()).filter((r) => r.version === 30).length === 10,
    );
    for (const row of await counts()) expect(row.count).toBe(30);
    expect(standby.stats().eventsApplied).toBeGreaterThanOrEqual(100);
    const read = await get(t, `${BASE}/${type}/c-3?name=${name}`);
    expect(read.json<ProjectionJson>()).toMatchObject({ version: 30, state: { count: 30, total: 60 } });
  });
});
