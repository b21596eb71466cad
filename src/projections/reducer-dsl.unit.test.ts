import { describe, expect, it } from 'vitest';
import {
  compileReducer,
  DSL_LIMITS,
  foldEvents,
  handlersProblems,
  initialStateProblems,
  startPoint,
  type HandlerSpec,
  type ProjectionEvent,
  type State,
} from './reducer-dsl.js';

let position = 0;
function event(
  version: number,
  type: string,
  data: Record<string, unknown> = {},
  extra: Partial<ProjectionEvent> = {},
): ProjectionEvent {
  position++;
  return {
    position,
    event_id: `e${version}`,
    event_type: type,
    event_source: 'backend',
    event_category: 'user_action',
    user_id: 'u-1',
    session_id: null,
    organization_id: null,
    device_id: null,
    correlation_id: null,
    data,
    metadata: { origin: 'test', nested: { level: 2 } },
    context: null,
    properties: null,
    timestamp: new Date(Date.UTC(2024, 2, 1, 0, version)),
    created_at: new Date(Date.UTC(2024, 2, 1, 1, version)),
    stream_id: 'cart:c-1',
    entity_type: 'cart',
    entity_id: 'c-1',
    stream_version: version,
    ...extra,
  };
}

function fold(handlers: HandlerSpec[], events: ProjectionEvent[], initial: State = {}) {
  const reducer = compileReducer(handlers, initial);
  return foldEvents(reducer, startPoint(reducer), events);
}

const paths = (handlers: unknown) => handlersProblems(handlers).map((p) => p.path);

describe('reducer DSL: operations', () => {
  it('set: from event fields (nested, scalar, timestamps), literals, defaults', () => {
    const { state } = fold(
      [
        {
          event_type: 'cart.created',
          operations: [
            { op: 'set', path: 'owner', from: 'user_id' },
            { op: 'set', path: 'meta.origin', from: 'metadata.origin' },
            { op: 'set', path: 'meta.level', from: 'metadata.nested.level' },
            { op: 'set', path: 'opened_at', from: 'timestamp' },
            { op: 'set', path: 'status', value: { code: 'open' } },
            { op: 'set', path: 'first_sku', from: 'data.items.0.sku' },
            { op: 'set', path: 'coupon', from: 'data.coupon', default: 'none' },
            { op: 'set', path: 'ignored', from: 'data.missing' },
            { op: 'set', path: 'type', from: 'event_type' },
            { op: 'set', path: 'v', from: 'stream_version' },
          ],
        },
      ],
      [event(1, 'cart.created', { items: [{ sku: 'a' }] })],
    );
    expect(state).toEqual({
      owner: 'u-1',
      meta: { origin: 'test', level: 2 },
      opened_at: '2024-03-01T00:01:00.000Z',
      status: { code: 'open' },
      first_sku: 'a',
      coupon: 'none',
      type: 'cart.created',
      v: 1,
    });
  });

  it('merge: data into the root by default, any object into a path; non-objects are skipped', () => {
    const { state } = fold(
      [
        { event_type: 'a', operations: [{ op: 'merge' }] },
        { event_type: 'b', operations: [{ op: 'merge', path: 'address', from: 'data.address' }] },
        { event_type: 'c', operations: [{ op: 'merge', from: 'data.not_an_object' }] },
      ],
      [
        event(1, 'a', { x: 1, y: { z: 1 } }),
        event(2, 'a', { y: 2 }),
        event(3, 'b', { address: { city: 'Oslo' } }),
        event(4, 'b', { address: { zip: '0150' } }),
        event(5, 'c', { not_an_object: [1, 2] }),
      ],
    );
    expect(state).toEqual({ x: 1, y: 2, address: { city: 'Oslo', zip: '0150' } });
  });

  it('increment: by 1, by a number, by an event field; non-numbers in the event are skipped', () => {
    const { state } = fold(
      [
        {
          event_type: 'item.added',
          operations: [
            { op: 'increment', path: 'count' },
            { op: 'increment', path: 'total', from: 'data.price' },
            { op: 'increment', path: 'stats.weight', by: -0.5 },
          ],
        },
      ],
      [
        event(1, 'item.added', { price: 10 }),
        event(2, 'item.added', { price: '5' }),
        event(3, 'item.added', { price: 2.5 }),
      ],
      { total: 'not a number' },
    );
    expect(state).toEqual({ count: 3, total: 12.5, stats: { weight: -1.5 } });
  });

  it('increment never leaves the JSON numbers (an overflow is not applied)', () => {
    const { state } = fold(
      [{ event_type: 'x', operations: [{ op: 'increment', path: 'n', from: 'data.n' }] }],
      [event(1, 'x', { n: Number.MAX_VALUE }), event(2, 'x', { n: Number.MAX_VALUE })],
    );
    expect(state).toEqual({ n: Number.MAX_VALUE });
  });

  it('append: from the event or a literal, keeping the newest max_length items', () => {
    const handlers: HandlerSpec[] = [
      {
        event_type: 'item.added',
        operations: [
          { op: 'append', path: 'skus', from: 'data.sku', max_length: 3 },
          { op: 'append', path: 'log', value: 'added' },
        ],
      },
    ];
    const events = ['a', 'b', 'c', 'd', 'e'].map((sku, i) => event(i + 1, 'item.added', { sku }));
    const { state } = fold(handlers, events, { skus: 'replaced' });
    expect(state).toEqual({ skus: ['c', 'd', 'e'], log: ['added', 'added', 'added', 'added', 'added'] });
  });

  it('append copies values: a later change of one copy leaves the other alone', () => {
    const { state } = fold(
      [
        {
          event_type: 'x',
          operations: [
            { op: 'append', path: 'list', from: 'data.item' },
            { op: 'set', path: 'last', from: 'data.item' },
            { op: 'set', path: 'last.changed', value: true },
          ],
        },
      ],
      [event(1, 'x', { item: { id: 1 } })],
    );
    expect(state).toEqual({ list: [{ id: 1 }], last: { id: 1, changed: true } });
  });

  it('remove: a key at a path; absent paths are no-ops', () => {
    const { state } = fold(
      [
        {
          event_type: 'x',
          operations: [
            { op: 'remove', path: 'a.b' },
            { op: 'remove', path: 'missing.deep' },
            { op: 'remove', path: 'top' },
          ],
        },
      ],
      [event(1, 'x')],
      { a: { b: 1, c: 2 }, top: 1, keep: true },
    );
    expect(state).toEqual({ a: { c: 2 }, keep: true });
  });

  it('delete: the state is gone; the next matching event starts again from the initial state', () => {
    const handlers: HandlerSpec[] = [
      { event_type: 'cart.>', operations: [{ op: 'increment', path: 'events' }] },
      { event_type: 'cart.closed', operations: [{ op: 'delete' }] },
      { event_type: 'cart.closed', operations: [{ op: 'set', path: 'never', value: 1 }] },
    ];
    const reducer = compileReducer(handlers, { events: 0, open: true });
    const closed = foldEvents(reducer, startPoint(reducer), [
      event(1, 'cart.opened'),
      event(2, 'cart.opened'),
      event(3, 'cart.closed'),
      event(4, 'other.thing'),
    ]);
    // A non-matching event changes nothing, not even a deleted state.
    expect(closed).toMatchObject({ state: null, version: 4, last_event_id: 'e4' });
    const reopened = foldEvents(reducer, closed, [event(5, 'cart.opened')]);
    expect(reopened.state).toEqual({ events: 1, open: true });
  });

  it('runs every matching handler in order: exact types and NATS-style patterns', () => {
    const { state } = fold(
      [
        { event_type: 'order.*', operations: [{ op: 'append', path: 'seen', value: 'star' }] },
        { event_type: 'order.paid', operations: [{ op: 'append', path: 'seen', value: 'exact' }] },
        { event_type: '>', operations: [{ op: 'append', path: 'seen', value: 'all' }] },
        { event_type: 'order.paid.late', operations: [{ op: 'append', path: 'seen', value: 'never' }] },
      ],
      [event(1, 'order.paid'), event(2, 'order.shipped.partially')],
    );
    expect(state).toEqual({ seen: ['star', 'exact', 'all', 'all'] });
  });

  it('a missing or non-object step on a path becomes an object', () => {
    const { state } = fold(
      [{ event_type: 'x', operations: [{ op: 'set', path: 'a.b.c', value: 1 }] }],
      [event(1, 'x')],
      { a: 5 },
    );
    expect(state).toEqual({ a: { b: { c: 1 } } });
  });

  it('stores keys such as __proto__ from event data as plain keys, never touching prototypes', () => {
    const data = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"x": 1}}') as Record<
      string,
      unknown
    >;
    const { state } = fold(
      [
        {
          event_type: 'x',
          operations: [{ op: 'merge' }, { op: 'set', path: 'copy', from: 'data' }],
        },
      ],
      [event(1, 'x', data)],
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(state)).toBe(Object.prototype);
    expect(JSON.parse(JSON.stringify(state))).toEqual(
      JSON.parse(
        '{"__proto__": {"polluted": true}, "constructor": {"x": 1}, "copy": {"__proto__": {"polluted": true}, "constructor": {"x": 1}}}',
      ),
    );
    // Reading through prototypes is not possible either.
    const read = fold(
      [{ event_type: 'x', operations: [{ op: 'set', path: 'p', from: 'data.toString' }] }],
      [event(1, 'x', {})],
    );
    expect(read.state).toEqual({});
  });
});

describe('reducer DSL: folding', () => {
  const handlers: HandlerSpec[] = [
    { event_type: 'item.added', operations: [{ op: 'append', path: 'items', from: 'data', max_length: 5 }] },
    { event_type: 'item.added', operations: [{ op: 'increment', path: 'n' }] },
    { event_type: 'cart.emptied', operations: [{ op: 'set', path: 'items', value: [] }] },
    { event_type: 'cart.deleted', operations: [{ op: 'delete' }] },
  ];
  const events = Array.from({ length: 40 }, (_, i) =>
    event(i + 1, i % 13 === 12 ? 'cart.deleted' : i % 7 === 6 ? 'cart.emptied' : 'item.added', { i }),
  );

  it('continuing from any point (also through JSON, as from the database) equals folding at once', () => {
    const reducer = compileReducer(handlers, { items: [] });
    const whole = foldEvents(reducer, startPoint(reducer), events);
    for (const cut of [0, 1, 12, 13, 20, 39, 40]) {
      const part = foldEvents(reducer, startPoint(reducer), events.slice(0, cut));
      const stored = { ...part, state: JSON.parse(JSON.stringify(part.state)) as State | null };
      expect(foldEvents(reducer, stored, events.slice(cut))).toEqual(whole);
    }
    expect(whole.version).toBe(40);
    expect(whole.last_event_id).toBe('e40');
  });

  it('skips events already folded, throws on a missing version, never changes its input', () => {
    const reducer = compileReducer(handlers, { items: [] });
    const start = foldEvents(reducer, startPoint(reducer), events.slice(0, 3));
    const snapshot = JSON.stringify(start);
    const again = foldEvents(reducer, start, events.slice(0, 5));
    expect(again.version).toBe(5);
    expect(JSON.stringify(start)).toBe(snapshot);
    expect(() => foldEvents(reducer, start, events.slice(4, 6))).toThrow(/version 4 missing/);
  });

  it('an event no handler matches advances the version only', () => {
    const reducer = compileReducer(handlers, { items: [] });
    const folded = foldEvents(reducer, startPoint(reducer), [event(1, 'unrelated')]);
    expect(folded).toEqual({
      state: { items: [] },
      version: 1,
      last_event_id: 'e1',
      last_event_at: new Date(Date.UTC(2024, 2, 1, 1, 1)),
    });
  });
});

describe('reducer DSL: validation', () => {
  it('accepts every operation in its valid forms', () => {
    expect(
      handlersProblems([
        {
          event_type: 'cart.*',
          operations: [
            { op: 'set', path: 'a', value: null },
            { op: 'set', path: 'a', from: 'data.x', default: 0 },
            { op: 'merge' },
            { op: 'merge', path: 'm', from: 'metadata' },
            { op: 'increment', path: 'n' },
            { op: 'increment', path: 'n', by: 2 },
            { op: 'increment', path: 'n', from: 'data.qty' },
            { op: 'append', path: 'l', value: 1, max_length: 10 },
            { op: 'append', path: 'l', from: 'event_id' },
            { op: 'remove', path: 'a.b' },
            { op: 'delete' },
          ],
        },
        { event_type: '>', operations: [{ op: 'set', path: 'at', from: 'created_at' }] },
      ]),
    ).toEqual([]);
  });

  it('names every problem with its path', () => {
    const problems = handlersProblems([
      {
        event_type: 'cart..x',
        operations: [
          { op: 'upsert', path: 'a' },
          { op: 'set', path: 'a.__proto__.x', value: 1 },
          { op: 'set', path: 'a' },
          { op: 'set', path: 'a', value: 1, from: 'data' },
          { op: 'set', path: 'a', value: 1, default: 2 },
          { op: 'merge', from: 'user_id' },
          { op: 'increment', path: 'n', by: 'x' },
          { op: 'increment', path: 'n', by: 1, from: 'data.n' },
          { op: 'append', path: 'l', value: 1, max_length: 0 },
          { op: 'remove' },
          { op: 'remove', path: 'a', from: 'data' },
          { op: 'set', path: 'a..b', from: 'status' },
          { op: 'set', path: 'a', from: 'user_id.name' },
          { op: 'delete' },
          { op: 'set', path: 'constructor', value: 1 },
        ],
        extra: true,
      },
      'not a handler',
      { event_type: 'x', operations: [] },
    ]);
    const at = (i: number) => `body.handlers[0].operations[${i}]`;
    expect(problems.map((p) => p.path)).toEqual([
      'body.handlers[0].extra',
      'body.handlers[0].event_type',
      `${at(0)}.op`,
      `${at(1)}.path`,
      at(2),
      `${at(3)}.value`,
      `${at(4)}.default`,
      `${at(5)}.from`,
      `${at(6)}.by`,
      `${at(7)}.by`,
      `${at(8)}.max_length`,
      `${at(9)}.path`,
      `${at(10)}.from`,
      `${at(11)}.path`,
      `${at(11)}.from`,
      `${at(12)}.from`,
      at(13),
      `${at(14)}.path`,
      'body.handlers[1]',
      'body.handlers[2].operations',
    ]);
    for (const problem of problems) expect(problem.message.length).toBeGreaterThan(5);
    expect(problems.find((p) => p.path === `${at(1)}.path`)!.message).toMatch(/__proto__/);
  });

  it('bounds handlers, operations, paths and literals', () => {
    const op = { op: 'increment', path: 'n' };
    expect(
      paths(Array.from({ length: DSL_LIMITS.handlers + 1 }, () => ({ event_type: 'x', operations: [op] }))),
    ).toEqual(['body.handlers']);
    expect(
      paths([{ event_type: 'x', operations: Array.from({ length: DSL_LIMITS.operations + 1 }, () => op) }]),
    ).toEqual(['body.handlers[0].operations']);
    expect(paths([])).toEqual(['body.handlers']);
    expect(paths({})).toEqual(['body.handlers']);
    const deep = Array.from({ length: DSL_LIMITS.pathSegments + 1 }, () => 'a').join('.');
    const long = 'a'.repeat(DSL_LIMITS.pathLength + 1);
    const big = 'x'.repeat(DSL_LIMITS.literalChars);
    expect(
      paths([
        {
          event_type: 'x',
          operations: [
            { op: 'set', path: deep, value: 1 },
            { op: 'set', path: long, value: 1 },
            { op: 'set', path: 'a', value: big },
            { op: 'set', path: 'a', value: 'nul\u0000' },
            { op: 'set', path: 'a\u0001', value: 1 },
            { op: 'append', path: 'a', value: 1, max_length: DSL_LIMITS.listLength + 1 },
          ],
        },
      ]),
    ).toEqual(
      [0, 1, 2, 3, 4, 5].map(
        (i) =>
          `body.handlers[0].operations[${i}].${i === 2 || i === 3 ? 'value' : i === 5 ? 'max_length' : 'path'}`,
      ),
    );
  });

  it('checks the initial state: an object of bounded size with storable strings', () => {
    expect(initialStateProblems({ a: [1, { b: 'c' }] })).toEqual([]);
    expect(initialStateProblems([1])).toEqual([{ path: 'body.initial_state', message: 'must be an object' }]);
    expect(initialStateProblems({ a: 'x'.repeat(DSL_LIMITS.initialStateChars) })[0]!.path).toBe(
      'body.initial_state',
    );
    expect(initialStateProblems({ a: { b: 'nul\u0000' } })[0]!.path).toBe('body.initial_state.a.b');
  });

  it('refuses to compile an invalid definition', () => {
    expect(() => compileReducer([{ event_type: 'x', operations: [{ op: 'remove' }] }], {})).toThrow(
      /handlers\[0\]\.operations\[0\]\.path/,
    );
  });
});
