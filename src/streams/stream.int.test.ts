import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_KINDS, startTestApp, type TestApp } from '../test-support/app.js';
import { createEvent, get, post, uid, validationPaths, type EventJson } from '../test-support/http.js';

interface StreamJson {
  stream_id: string;
  stream_type: string;
  entity_type: string;
  entity_id: string;
  events: EventJson[];
  version: number;
}

const streamUrl = (streamId: string, query = '') =>
  `/api/v1/events/stream/${encodeURIComponent(streamId)}${query}`;

describe.each(STORE_KINDS)('GET /api/v1/events/stream/{stream_id} (%s)', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(kind);
  });
  afterAll(async () => {
    await t?.close();
  });

  async function readStream(streamId: string, query = ''): Promise<StreamJson> {
    const res = await get(t, streamUrl(streamId, query));
    expect(res.statusCode, res.body).toBe(200);
    return res.json<StreamJson>();
  }

  /** A stream with five events (created one by one and in a batch), among events of other streams. */
  async function fiveEventStream(): Promise<{ streamId: string; entityId: string; events: EventJson[] }> {
    const entityId = uid('ord');
    const streamId = `order:${entityId}`;
    const events: EventJson[] = [];
    events.push(await createEvent(t, { event_type: 'order.created', stream_id: streamId, data: { n: 1 } }));
    await createEvent(t, { event_type: 'noise', stream_id: `order:${uid('other')}` });
    events.push(
      await createEvent(t, { event_type: 'order.updated', entity_type: 'order', entity_id: entityId }),
    );
    await createEvent(t, { event_type: 'noise' });
    const batch = await post(t, '/api/v1/events/batch', [
      { event_type: 'order.item_added', stream_id: streamId },
      { event_type: 'noise', stream_id: `invoice:${entityId}` },
      { event_type: 'order.item_added', stream_id: streamId, expected_version: 3 },
      { event_type: 'order.paid', stream_id: streamId },
    ]);
    expect(batch.statusCode).toBe(201);
    const created = batch.json<EventJson[]>();
    events.push(created[0]!, created[2]!, created[3]!);
    return { streamId, entityId, events };
  }

  it('answers the events in version order with the stream fields', async () => {
    const { streamId, entityId, events } = await fiveEventStream();
    const stream = await readStream(streamId);
    expect(Object.keys(stream).sort()).toEqual(
      ['entity_id', 'entity_type', 'events', 'stream_id', 'stream_type', 'version'].sort(),
    );
    expect(stream).toMatchObject({
      stream_id: streamId,
      stream_type: 'order',
      entity_type: 'order',
      entity_id: entityId,
      version: 5,
    });
    expect(stream.events.map((e) => e.stream_version)).toEqual([1, 2, 3, 4, 5]);
    expect(stream.events).toEqual(events);
    for (const event of stream.events) {
      expect(event).toMatchObject({ stream_id: streamId, entity_type: 'order', entity_id: entityId });
    }
  });

  it('reads from from_version on', async () => {
    const { streamId } = await fiveEventStream();
    const stream = await readStream(streamId, '?from_version=3');
    expect(stream.events.map((e) => e.stream_version)).toEqual([3, 4, 5]);
    expect(stream.version).toBe(5);
    const last = await readStream(streamId, '?from_version=5');
    expect(last.events.map((e) => e.stream_version)).toEqual([5]);
    const beyond = await readStream(streamId, '?from_version=6');
    expect(beyond.events).toEqual([]);
    expect(beyond.version).toBe(5);
  });

  it('reads forwards with a limit', async () => {
    const { streamId } = await fiveEventStream();
    const stream = await readStream(streamId, '?limit=2');
    expect(stream.events.map((e) => e.stream_version)).toEqual([1, 2]);
    expect(stream.version).toBe(5);
    const middle = await readStream(streamId, '?from_version=2&limit=2&direction=forward');
    expect(middle.events.map((e) => e.stream_version)).toEqual([2, 3]);
  });

  it('reads backwards, from the newest or from from_version, with a limit', async () => {
    const { streamId } = await fiveEventStream();
    const all = await readStream(streamId, '?direction=backward');
    expect(all.events.map((e) => e.stream_version)).toEqual([5, 4, 3, 2, 1]);
    const newest = await readStream(streamId, '?direction=backward&limit=2');
    expect(newest.events.map((e) => e.stream_version)).toEqual([5, 4]);
    expect(newest.version).toBe(5);
    const from = await readStream(streamId, '?direction=backward&from_version=3&limit=2');
    expect(from.events.map((e) => e.stream_version)).toEqual([3, 2]);
    const fromTop = await readStream(streamId, '?direction=backward&from_version=9&limit=1');
    expect(fromTop.events.map((e) => e.stream_version)).toEqual([5]);
  });

  it('shows an appended event at once', async () => {
    const { streamId } = await fiveEventStream();
    await createEvent(t, { event_type: 'order.shipped', stream_id: streamId, expected_version: 5 });
    const stream = await readStream(streamId, '?direction=backward&limit=1');
    expect(stream.version).toBe(6);
    expect(stream.events[0]).toMatchObject({ event_type: 'order.shipped', stream_version: 6 });
  });

  it('answers 404 for an unknown stream', async () => {
    const streamId = `order:${uid('missing')}`;
    const res = await get(t, streamUrl(streamId));
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ detail: `Stream not found: ${streamId}`, code: 'not_found' });
  });

  it('answers 404 for a stream whose only append was refused', async () => {
    const streamId = `order:${uid('refused')}`;
    const res = await post(t, '/api/v1/events/create', {
      event_type: 'x',
      stream_id: streamId,
      expected_version: 'stream_exists',
    });
    expect(res.statusCode).toBe(409);
    expect((await get(t, streamUrl(streamId))).statusCode).toBe(404);
  });

  it('reads streams whose ids need URL encoding', async () => {
    const ids = [
      `doc:${uid('a')}/b c?d#e%f&g=h+i`,
      `doc:${uid('x')}:y:z`,
      `dök:${uid('ü')}-ñ-日本-🎉`,
      `d o c:${uid('sp')}`,
      `doc:${uid('long')}-${'é'.repeat(200)}`,
    ];
    for (const streamId of ids) {
      const first = await createEvent(t, { event_type: 'doc.created', stream_id: streamId });
      const second = await createEvent(t, { event_type: 'doc.updated', stream_id: streamId });
      const stream = await readStream(streamId);
      const colon = streamId.indexOf(':');
      expect(stream, streamId).toMatchObject({
        stream_id: streamId,
        entity_type: streamId.slice(0, colon),
        entity_id: streamId.slice(colon + 1),
        version: 2,
      });
      expect(stream.events).toEqual([first, second]);
    }
    // a colon does not need encoding
    const plain = `doc:${uid('plain')}`;
    await createEvent(t, { event_type: 'doc.created', stream_id: plain });
    const res = await get(t, `/api/v1/events/stream/${plain}`);
    expect(res.statusCode).toBe(200);
    expect(res.json<StreamJson>().stream_id).toBe(plain);
  });

  it('reads a stream id of the longest length the API accepts', async () => {
    const streamId = `${'t'.repeat(100)}:${'i'.repeat(255)}`;
    expect(streamId).toHaveLength(356);
    await createEvent(t, { event_type: 'long', stream_id: streamId });
    const stream = await readStream(streamId);
    expect(stream).toMatchObject({ stream_id: streamId, version: 1 });
  });

  it.each<[string, string]>([
    ['from_version=0', 'query.from_version'],
    ['from_version=abc', 'query.from_version'],
    ['limit=0', 'query.limit'],
    ['limit=1001', 'query.limit'],
    ['direction=sideways', 'query.direction'],
    ['colour=red', 'query.colour'],
  ])('answers 422 for ?%s', async (query, path) => {
    const res = await get(t, streamUrl('order:1', `?${query}`));
    expect(validationPaths(res)).toContain(path);
  });
});

describe.each(STORE_KINDS)('GET /api/v1/events/streams (%s)', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(kind);
  });
  afterAll(async () => {
    await t?.close();
  });

  interface StreamListJson {
    streams: (Omit<StreamJson, 'events'> & {
      first_event_id: string;
      last_event_id: string;
      created_at: string;
      updated_at: string;
    })[];
    total: number;
    limit: number;
    offset: number;
    has_more: boolean;
  }

  async function list(query: string): Promise<StreamListJson> {
    const res = await get(t, `/api/v1/events/streams?${query}`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json<StreamListJson>();
  }

  it('lists the streams of an entity type with their heads, in entity id order, a page at a time', async () => {
    const type = uid('cart').replace(/[^a-z0-9]/gi, '');
    const ids = ['c', 'a', 'b'].map((letter) => `${letter}-${uid('e')}`);
    const firsts = new Map<string, EventJson>();
    const lasts = new Map<string, EventJson>();
    for (const [i, id] of ids.entries()) {
      for (let n = 0; n <= i; n++) {
        const event = await createEvent(t, { event_type: 'cart.touched', entity_type: type, entity_id: id });
        if (n === 0) firsts.set(id, event);
        lasts.set(id, event);
      }
    }
    await createEvent(t, { event_type: 'other', entity_type: `${type}x`, entity_id: 'a' });
    // Refused appends leave no listed stream behind.
    const refused = await post(t, '/api/v1/events/create', {
      event_type: 'cart.touched',
      entity_type: type,
      entity_id: 'zz-refused',
      expected_version: 3,
    });
    expect(refused.statusCode).toBe(409);

    const all = await list(`entity_type=${type}`);
    const sorted = [...ids].sort();
    expect(all).toMatchObject({ total: 3, limit: 100, offset: 0, has_more: false });
    expect(all.streams.map((s) => s.entity_id)).toEqual(sorted);
    for (const stream of all.streams) {
      const id = stream.entity_id;
      expect(stream).toMatchObject({
        stream_id: `${type}:${id}`,
        stream_type: type,
        entity_type: type,
        version: ids.indexOf(id) + 1,
        first_event_id: firsts.get(id)!.event_id,
        last_event_id: lasts.get(id)!.event_id,
      });
      expect(Date.parse(stream.updated_at)).toBeGreaterThanOrEqual(Date.parse(stream.created_at));
    }

    const page = await list(`entity_type=${type}&limit=2&offset=1`);
    expect(page).toMatchObject({ total: 3, limit: 2, offset: 1, has_more: false });
    expect(page.streams.map((s) => s.entity_id)).toEqual(sorted.slice(1));
    const first = await list(`entity_type=${type}&limit=1`);
    expect(first.has_more).toBe(true);

    const everything = await list('limit=1000');
    expect(everything.streams.map((s) => s.stream_id)).toEqual(
      [...everything.streams.map((s) => s.stream_id)].sort(),
    );
    expect(everything.streams.some((s) => s.stream_id === `${type}x:a`)).toBe(true);
  });

  it.each<[string, string]>([
    ['limit=0', 'query.limit'],
    ['limit=1001', 'query.limit'],
    ['offset=-1', 'query.offset'],
    ['entity_type=', 'query.entity_type'],
    ['colour=red', 'query.colour'],
  ])('answers 422 for ?%s', async (query, path) => {
    const res = await get(t, `/api/v1/events/streams?${query}`);
    expect(validationPaths(res)).toContain(path);
  });
});
