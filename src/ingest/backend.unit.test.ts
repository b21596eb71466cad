import { describe, expect, it } from 'vitest';
import { EventCategory } from '../domain/event.js';
import { patternCovers } from '../domain/subjects.js';
import {
  categorizeBackendEvent,
  idempotencyKeyOf,
  mapBackendMessage,
  messageIdOf,
  readTimestamp,
  sourceServiceOf,
  type NatsMessage,
} from './backend.js';

const encode = (value: unknown) =>
  new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));
const NOW = new Date('2026-01-02T03:04:05.000Z');
const STORED_AT = new Date('2026-01-01T00:00:00.000Z');

function message(body: unknown, overrides: Partial<NatsMessage> = {}): NatsMessage {
  return {
    subject: 'events.backend.billing.payment.completed',
    data: encode(body),
    headers: {},
    stream: 'events-ingest',
    streamSequence: 42,
    time: STORED_AT,
    ...overrides,
  };
}

describe('categorizeBackendEvent (the seed _categorize_nats_event)', () => {
  it.each([
    ['user.created', EventCategory.USER_LIFECYCLE],
    ['USER_DELETED', EventCategory.USER_LIFECYCLE],
    ['payment.completed', EventCategory.PAYMENT],
    ['order.shipped', EventCategory.ORDER],
    ['task.assigned', EventCategory.TASK],
    ['device.online', EventCategory.DEVICE_STATUS],
    ['cache.flushed', EventCategory.SYSTEM],
    ['', EventCategory.SYSTEM],
    // first rule wins, as in the seed's if/elif chain
    ['user.payment.failed', EventCategory.USER_LIFECYCLE],
    ['payment.order.refunded', EventCategory.PAYMENT],
    ['order.task.created', EventCategory.ORDER],
    ['taskdevice', EventCategory.TASK],
  ])('%s → %s', (type, category) => {
    expect(categorizeBackendEvent(type)).toBe(category);
  });
});

describe('message identity', () => {
  it('is the Nats-Msg-Id header (any case) when present, else stream:sequence', () => {
    expect(messageIdOf({ headers: { 'Nats-Msg-Id': 'abc' }, stream: 's', streamSequence: 1 })).toBe('abc');
    expect(messageIdOf({ headers: { 'nats-msg-id': 'abc' }, stream: 's', streamSequence: 1 })).toBe('abc');
    expect(messageIdOf({ headers: { 'Nats-Msg-Id': '' }, stream: 's', streamSequence: 7 })).toBe('s:7');
    expect(messageIdOf({ headers: {}, stream: 'events-ingest', streamSequence: 7 })).toBe('events-ingest:7');
  });

  it('makes idempotency keys nats:<id>, hashing ids too long for the column', () => {
    expect(idempotencyKeyOf('abc')).toBe('nats:abc');
    const long = idempotencyKeyOf('x'.repeat(300));
    expect(long).toMatch(/^nats:sha256:[0-9a-f]{64}$/);
    expect(idempotencyKeyOf('x'.repeat(300))).toBe(long);
    expect(idempotencyKeyOf('x'.repeat(250))).toBe(`nats:${'x'.repeat(250)}`);
  });

  it('reads the sending service from the subject', () => {
    expect(sourceServiceOf('events.backend.billing.payment.completed')).toBe('billing');
    expect(sourceServiceOf('events.backend.auth')).toBe('auth');
    expect(sourceServiceOf('events.frontend.click.x')).toBeNull();
  });
});

describe('readTimestamp', () => {
  it.each([
    ['2026-01-01T10:00:00Z', '2026-01-01T10:00:00Z'],
    ['2026-01-01T10:00:00.123+02:00', '2026-01-01T10:00:00.123+02:00'],
    // Python's datetime.utcnow().isoformat(): no offset, read as UTC
    ['2026-01-01T10:00:00.123456', '2026-01-01T10:00:00.123456Z'],
    ['2026-01-01 10:00:00', '2026-01-01T10:00:00Z'],
  ])('%s → %s', (given, expected) => {
    expect(readTimestamp(given)).toBe(expected);
  });

  it.each([['yesterday'], ['2026-01-01'], [1767225600000], [null], ['10000-01-01T00:00:00Z']])(
    'refuses %s',
    (given) => {
      expect(readTimestamp(given)).toBeNull();
    },
  );
});

describe('mapBackendMessage', () => {
  it('maps a message as the seed does, keeping the sending service in metadata', () => {
    const mapped = mapBackendMessage(
      message(
        {
          id: 'src-1',
          type: 'payment.completed',
          source: 'billing-service',
          timestamp: '2026-01-01T12:00:00Z',
          data: { user_id: 'u-1', amount: 10 },
          metadata: { region: 'eu' },
          correlation_id: 'corr-1',
        },
        { headers: { 'Nats-Msg-Id': 'msg-1' } },
      ),
      () => NOW,
    );
    expect(mapped.ok).toBe(true);
    if (!mapped.ok) return;
    const event = mapped.event;
    expect(event).toMatchObject({
      eventType: 'payment.completed',
      eventSource: 'backend',
      eventCategory: 'payment',
      userId: 'u-1',
      correlationId: 'corr-1',
      data: { user_id: 'u-1', amount: 10 },
      idempotencyKey: 'nats:msg-1',
      clientEventId: false,
      timestamp: new Date('2026-01-01T12:00:00Z'),
    });
    expect(event.metadata).toEqual({
      region: 'eu',
      source_service: 'billing',
      source: 'billing-service',
      source_event_id: 'src-1',
      nats_subject: 'events.backend.billing.payment.completed',
      nats_message_id: 'msg-1',
    });
  });

  it('takes event_type when there is no type, and the top-level user_id when data has none', () => {
    const mapped = mapBackendMessage(message({ event_type: 'user.created', user_id: 7 }), () => NOW);
    expect(mapped.ok && mapped.event).toMatchObject({
      eventType: 'user.created',
      eventCategory: 'user_lifecycle',
      userId: '7',
      data: {},
      idempotencyKey: 'nats:events-ingest:42',
    });
  });

  it('uses the time the stream stored the message when it gives none, and keeps an unreadable one', () => {
    const none = mapBackendMessage(message({ type: 'x' }), () => NOW);
    expect(none.ok && none.event.timestamp).toEqual(STORED_AT);
    const bad = mapBackendMessage(message({ type: 'x', timestamp: 'soon' }), () => NOW);
    expect(bad.ok && bad.event.timestamp).toEqual(STORED_AT);
    expect(bad.ok && bad.event.metadata.message_timestamp).toBe('soon');
    const noStoreTime = mapBackendMessage(message({ type: 'x' }, { time: undefined }), () => NOW);
    expect(noStoreTime.ok && noStoreTime.event.timestamp).toEqual(NOW);
  });

  it('gives the same content hash for every delivery of one message', () => {
    const body = { type: 'order.created', data: { order_id: 'o-1' } };
    const first = mapBackendMessage(message(body, { time: new Date(1) }), () => NOW);
    const again = mapBackendMessage(message(body, { time: new Date(2) }), () => new Date(3));
    expect(first.ok && again.ok).toBe(true);
    if (!first.ok || !again.ok) return;
    expect(first.event.contentHash).toBe(again.event.contentHash);
    expect(first.event.eventId).not.toBe(again.event.eventId);
  });

  it.each([
    ['not JSON', 'hello {', /not JSON/],
    ['not an object', [1, 2], /not a JSON object/],
    ['without a type', { data: {} }, /no `type`/],
    ['with an empty type', { type: '' }, /no `type`/],
    ['with data that is not an object', { type: 'x', data: [1] }, /`data` must be a JSON object/],
    ['with a type too long', { type: 'x'.repeat(256) }, /message\.event_type/],
    ['with a NUL character', { type: 'x', data: { a: 'b\u0000' } }, /NUL/],
  ])('refuses a message %s', (_name, body, error) => {
    const mapped = mapBackendMessage(message(body), () => NOW);
    expect(mapped.ok).toBe(false);
    if (!mapped.ok) expect(mapped.error).toMatch(error);
  });

  it('refuses bytes that are not UTF-8', () => {
    const mapped = mapBackendMessage(message('', { data: new Uint8Array([0xff, 0xfe, 0x7b]) }), () => NOW);
    expect(mapped).toEqual({ ok: false, error: 'payload is not valid UTF-8' });
  });
});

describe('patternCovers', () => {
  it.each([
    ['events.>', 'events.backend.>', true],
    ['events.backend.>', 'events.backend.>', true],
    ['>', 'events.backend.>', true],
    ['events.*.>', 'events.backend.>', true],
    ['events.backend.*', 'events.backend.>', false],
    ['events.frontend.>', 'events.backend.>', false],
    ['events.backend.>', 'events.>', false],
    ['events.backend.x', 'events.backend.x', true],
    ['events.*', 'events.backend', true],
    ['events.backend', 'events.*', false],
  ])('%s covers %s: %s', (general, specific, expected) => {
    expect(patternCovers(general, specific)).toBe(expected);
  });
});
