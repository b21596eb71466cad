import { describe, expect, it } from 'vitest';
import { checkMessage } from './segment-ingest.js';
import {
  categorize,
  dataOf,
  eventTime,
  eventTypeOf,
  idempotencyKeyOf,
  IngestChannel,
  mergeContext,
  messageBytes,
  metadataOf,
  toNewEvent,
  traitsOf,
  userIdOf,
  type MapOptions,
  type SegmentMessage,
} from './segment.js';

const RECEIVED = new Date('2025-03-01T12:00:00.000Z');

function options(overrides: Partial<MapOptions> = {}): MapOptions {
  return { channel: IngestChannel.RUDDERSTACK_WEBHOOK, path: 'body', receivedAt: RECEIVED, ...overrides };
}

function mapped(message: SegmentMessage, overrides: Partial<MapOptions> = {}) {
  const result = toNewEvent(message, options(overrides));
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.event;
}

describe('categorize (the seed`s _categorize_rudderstack_event)', () => {
  it.each([
    ['page', undefined, 'page_view'],
    ['track', 'Signup Form Submitted', 'form_submit'],
    ['track', 'FORMULA chosen', 'form_submit'],
    ['track', 'Button Clicked', 'click'],
    ['track', 'DoubleCLICK', 'click'],
    ['track', 'Clicked inside a form', 'form_submit'],
    ['track', 'Order Completed', 'user_action'],
    ['identify', undefined, 'user_action'],
    ['screen', undefined, 'user_action'],
    ['group', undefined, 'user_action'],
    ['alias', undefined, 'user_action'],
  ] as const)('%s %s → %s', (type, event, category) => {
    expect(categorize(type, event)).toBe(category);
  });

  it('names the event by `event` for track and by the type otherwise', () => {
    expect(eventTypeOf({ type: 'track', event: 'Order Completed' })).toBe('Order Completed');
    expect(eventTypeOf({ type: 'identify', event: 'ignored' })).toBe('identify');
    expect(eventTypeOf({ type: 'page', name: 'Home' })).toBe('page');
  });
});

describe('user id', () => {
  it('is userId, else anonymousId, else null', () => {
    expect(userIdOf({ type: 'track', userId: 'u-1', anonymousId: 'a-1' })).toBe('u-1');
    expect(userIdOf({ type: 'track', anonymousId: 'a-1' })).toBe('a-1');
    expect(userIdOf({ type: 'track', userId: null, anonymousId: 'a-1' })).toBe('a-1');
    expect(userIdOf({ type: 'track', userId: '', anonymousId: 'a-1' })).toBe('a-1');
    expect(userIdOf({ type: 'track' })).toBeNull();
  });
  it('turns numeric ids into text', () => {
    expect(userIdOf({ type: 'track', userId: 42 })).toBe('42');
  });
});

describe('traits and data', () => {
  it('reads traits from `traits`, else from `context.traits`', () => {
    expect(traitsOf({ type: 'identify', traits: { a: 1 }, context: { traits: { b: 2 } } })).toEqual({ a: 1 });
    expect(traitsOf({ type: 'identify', context: { traits: { b: 2 } } })).toEqual({ b: 2 });
    expect(traitsOf({ type: 'identify', context: { traits: 'nope' } })).toEqual({});
    expect(traitsOf({ type: 'identify' })).toEqual({});
  });

  it('keeps what each type carries', () => {
    expect(dataOf({ type: 'track', event: 'x', properties: { p: 1 } })).toEqual({
      type: 'track',
      properties: { p: 1 },
    });
    expect(dataOf({ type: 'identify', context: { traits: { email: 'a@b.c' } } })).toEqual({
      type: 'identify',
      properties: {},
      traits: { email: 'a@b.c' },
    });
    expect(dataOf({ type: 'page', name: 'Home', category: 'Docs', properties: { url: '/' } })).toEqual({
      type: 'page',
      properties: { url: '/' },
      name: 'Home',
      category: 'Docs',
    });
    expect(dataOf({ type: 'screen', name: 'Main' })).toEqual({
      type: 'screen',
      properties: {},
      name: 'Main',
    });
    expect(dataOf({ type: 'group', groupId: 7, traits: { plan: 'pro' } })).toEqual({
      type: 'group',
      properties: {},
      traits: { plan: 'pro' },
      groupId: '7',
    });
    expect(dataOf({ type: 'alias', previousId: 'anon-1', userId: 'u-1' })).toEqual({
      type: 'alias',
      properties: {},
      previousId: 'anon-1',
    });
  });
});

describe('metadata', () => {
  it('keeps the original ids and timestamps that are present, and the channel', () => {
    const message: SegmentMessage = {
      type: 'track',
      event: 'x',
      messageId: 'm-1',
      anonymousId: 'a-1',
      userId: 'u-1',
      originalTimestamp: '2025-01-01T00:00:00Z',
      sentAt: '2025-01-01T00:00:01Z',
      receivedAt: '2025-01-01T00:00:02Z',
      timestamp: '2025-01-01T00:00:01Z',
      channel: 'web',
      rudderId: 'r-1',
      request_ip: '203.0.113.7',
      integrations: { All: true },
      writeKey: 'secret',
      somethingElse: 1,
    };
    expect(metadataOf(message, IngestChannel.RUDDERSTACK_WEBHOOK, undefined)).toEqual({
      ingest_channel: 'rudderstack_webhook',
      messageId: 'm-1',
      anonymousId: 'a-1',
      userId: 'u-1',
      originalTimestamp: '2025-01-01T00:00:00Z',
      sentAt: '2025-01-01T00:00:01Z',
      receivedAt: '2025-01-01T00:00:02Z',
      timestamp: '2025-01-01T00:00:01Z',
      channel: 'web',
      rudderId: 'r-1',
      request_ip: '203.0.113.7',
      integrations: { All: true },
    });
  });
  it('takes the batch `sentAt` when the message has none', () => {
    expect(metadataOf({ type: 'page' }, IngestChannel.TRACKING_API, '2025-01-01T00:00:00Z')).toEqual({
      ingest_channel: 'tracking_api',
      sentAt: '2025-01-01T00:00:00Z',
    });
  });
});

describe('idempotency key', () => {
  it('is the messageId with the shared prefix', () => {
    expect(idempotencyKeyOf('abc')).toBe('segment:abc');
    expect(idempotencyKeyOf(12)).toBe('segment:12');
    expect(idempotencyKeyOf(undefined)).toBeNull();
    expect(idempotencyKeyOf('')).toBeNull();
  });
  it('hashes a messageId too long for the key column, stably', () => {
    const long = 'm'.repeat(400);
    const key = idempotencyKeyOf(long)!;
    expect(key).toMatch(/^segment:sha256:[0-9a-f]{64}$/);
    expect(key.length).toBeLessThanOrEqual(255);
    expect(idempotencyKeyOf(long)).toBe(key);
    expect(idempotencyKeyOf(`${long}x`)).not.toBe(key);
  });
});

describe('mergeContext', () => {
  it('puts the batch context under the message context, deeply', () => {
    expect(
      mergeContext(
        { library: { name: 'batch', version: '1' }, ip: '1.1.1.1', app: { build: 3 } },
        { library: { name: 'msg' }, page: { url: '/x' } },
      ),
    ).toEqual({
      library: { name: 'msg', version: '1' },
      ip: '1.1.1.1',
      app: { build: 3 },
      page: { url: '/x' },
    });
  });
  it('handles missing sides', () => {
    expect(mergeContext(undefined, undefined)).toBeNull();
    expect(mergeContext({ a: 1 }, null)).toEqual({ a: 1 });
    expect(mergeContext(null, { b: 2 })).toEqual({ b: 2 });
  });
  it('keeps `__proto__` a plain key', () => {
    const over = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<string, unknown>;
    const merged = mergeContext({ b: 2 }, over)!;
    expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.hasOwn(merged, '__proto__')).toBe(true);
  });
});

describe('eventTime (clock-skew correction)', () => {
  it('uses the message`s own timestamp when it has one', () => {
    expect(eventTime({ type: 'track', timestamp: '2025-01-01T00:00:00Z' }, undefined, RECEIVED)).toEqual({
      at: new Date('2025-01-01T00:00:00Z'),
      given: true,
    });
  });
  it('is receivedAt - (sentAt - originalTimestamp) otherwise', () => {
    // The device's clock is a year behind: it says it sent 10 s after the event happened.
    const message: SegmentMessage = {
      type: 'track',
      originalTimestamp: '2024-03-01T11:59:00.000Z',
      sentAt: '2024-03-01T11:59:10.000Z',
    };
    expect(eventTime(message, undefined, RECEIVED)).toEqual({
      at: new Date('2025-03-01T11:59:50.000Z'),
      given: false,
    });
  });
  it('takes the batch `sentAt` when the message has none, the message`s when both', () => {
    const message: SegmentMessage = { type: 'track', originalTimestamp: '2024-03-01T11:59:00.000Z' };
    expect(eventTime(message, '2024-03-01T11:59:30.000Z', RECEIVED).at).toEqual(
      new Date('2025-03-01T11:59:30.000Z'),
    );
    expect(
      eventTime({ ...message, sentAt: '2024-03-01T11:59:01.000Z' }, '2024-03-01T11:59:30.000Z', RECEIVED).at,
    ).toEqual(new Date('2025-03-01T11:59:59.000Z'));
  });
  it('uses the message`s receivedAt (RudderStack`s) before ours', () => {
    const message: SegmentMessage = {
      type: 'track',
      originalTimestamp: '2024-01-01T00:00:00.000Z',
      sentAt: '2024-01-01T00:00:05.000Z',
      receivedAt: '2024-06-01T00:00:00.000Z',
    };
    expect(eventTime(message, undefined, RECEIVED).at).toEqual(new Date('2024-05-31T23:59:55.000Z'));
  });
  it('falls back to originalTimestamp without sentAt, and to the receive time without either', () => {
    expect(
      eventTime({ type: 'page', originalTimestamp: '2024-01-01T00:00:00Z' }, undefined, RECEIVED).at,
    ).toEqual(new Date('2024-01-01T00:00:00Z'));
    expect(eventTime({ type: 'page' }, undefined, RECEIVED)).toEqual({ at: RECEIVED, given: false });
  });
  it('ignores values that are not dates', () => {
    expect(
      eventTime({ type: 'page', timestamp: 'yesterday', originalTimestamp: 'soon' }, 'now', RECEIVED),
    ).toEqual({ at: RECEIVED, given: false });
  });
  it('does not leave the storable range', () => {
    const message: SegmentMessage = {
      type: 'page',
      originalTimestamp: '0001-01-02T00:00:00Z',
      sentAt: '9000-01-01T00:00:00Z',
    };
    expect(eventTime(message, undefined, RECEIVED).at).toEqual(new Date('0001-01-02T00:00:00Z'));
  });
});

describe('toNewEvent', () => {
  const track: SegmentMessage = {
    type: 'track',
    event: 'Signup Form Submitted',
    userId: 'u-1',
    anonymousId: 'a-1',
    messageId: 'm-1',
    properties: { plan: 'pro' },
    context: { ip: '203.0.113.7', sessionId: 1700000000, device: { id: 'd-1' } },
    originalTimestamp: '2025-03-01T11:00:00.000Z',
    sentAt: '2025-03-01T11:00:01.000Z',
  };

  it('maps every field', () => {
    const event = mapped(track);
    expect(event).toMatchObject({
      eventType: 'Signup Form Submitted',
      eventSource: 'frontend',
      eventCategory: 'form_submit',
      userId: 'u-1',
      sessionId: '1700000000',
      deviceId: 'd-1',
      data: { type: 'track', properties: { plan: 'pro' } },
      context: track.context,
      idempotencyKey: 'segment:m-1',
      clientEventId: false,
      stream: null,
    });
    expect(event.metadata).toMatchObject({ messageId: 'm-1', sentAt: '2025-03-01T11:00:01.000Z' });
    expect(event.timestamp).toEqual(new Date('2025-03-01T11:59:59.000Z'));
  });

  it('has the same content hash for a retry sent and received at other times', () => {
    const first = mapped(track);
    const retry = mapped(
      { ...track, sentAt: '2025-03-01T11:05:00.000Z' },
      { receivedAt: new Date('2025-03-01T12:05:00Z') },
    );
    expect(retry.contentHash).toBe(first.contentHash);
    expect(retry.eventId).not.toBe(first.eventId);
    expect(retry.metadata.sentAt).toBe('2025-03-01T11:05:00.000Z');
  });

  it('has another content hash when the content differs', () => {
    const first = mapped(track);
    expect(mapped({ ...track, properties: { plan: 'free' } }).contentHash).not.toBe(first.contentHash);
    expect(mapped({ ...track, originalTimestamp: '2025-03-01T11:00:00.001Z' }).contentHash).not.toBe(
      first.contentHash,
    );
    expect(mapped(track, { channel: IngestChannel.TRACKING_API }).contentHash).not.toBe(first.contentHash);
  });

  it('hashes a timestamp the message gave', () => {
    const a = mapped({ ...track, timestamp: '2025-01-01T00:00:00Z' });
    const b = mapped({ ...track, timestamp: '2025-01-01T00:00:01Z' });
    expect(a.timestamp).toEqual(new Date('2025-01-01T00:00:00Z'));
    expect(a.contentHash).not.toBe(b.contentHash);
  });

  it('merges the batch context under the message`s', () => {
    const event = mapped(
      { type: 'page', context: { page: { url: '/a' } } },
      { batch: { context: { library: { name: 'sdk' }, page: { title: 'T' } } } },
    );
    expect(event.context).toEqual({ library: { name: 'sdk' }, page: { url: '/a', title: 'T' } });
  });

  it('has no idempotency key without a messageId', () => {
    expect(mapped({ type: 'page' }).idempotencyKey).toBeNull();
  });

  it('reports strings the store cannot keep', () => {
    const result = toNewEvent({ type: 'track', event: 'x', properties: { bad: 'a\u0000b' } }, options());
    expect(result.ok).toBe(false);
  });
});

describe('checkMessage', () => {
  it('accepts any case of the type and unknown fields', () => {
    const checked = checkMessage({ type: 'TRACK', event: 'x', whatever: { a: 1 }, _metadata: {} }, 'body');
    expect(checked).toMatchObject({ ok: true, message: { type: 'track', whatever: { a: 1 } } });
  });
  it('refuses what can never be stored, naming the field', () => {
    const problems = (raw: unknown) => {
      const checked = checkMessage(raw, 'body[2]');
      if (checked.ok) throw new Error('accepted');
      return checked.error;
    };
    expect(problems({ type: 'track' })).toMatchObject({
      errors: [{ path: 'body[2].event', message: 'is required' }],
    });
    expect(problems({ event: 'x' })).toMatchObject({
      errors: [{ path: 'body[2].type', message: 'is required' }],
    });
    expect(problems({ type: 'purchase' })).toMatchObject({ errors: [{ path: 'body[2].type' }] });
    expect(problems({ type: 'track', event: 'x', properties: 'nope' })).toMatchObject({
      errors: [{ path: 'body[2].properties' }],
    });
    expect(problems({ type: 'track', event: 'e'.repeat(256) })).toMatchObject({
      errors: [{ path: 'body[2].event' }],
    });
    expect(problems(['track'])).toMatchObject({
      errors: [{ path: 'body[2]', message: 'must be an object' }],
    });
  });
  it('refuses a message larger than the limit', () => {
    const big = { type: 'track', event: 'x', properties: { blob: 'x'.repeat(40_000) } };
    expect(messageBytes(big)).toBeGreaterThan(32 * 1024);
    expect(checkMessage(big, 'body', 32 * 1024)).toMatchObject({
      ok: false,
      error: { code: 'body_too_large' },
    });
    expect(checkMessage(big, 'body')).toMatchObject({ ok: true });
  });
});
