import { describe, expect, it } from 'vitest';
import {
  contentHash,
  findUnstorableString,
  normalizeCreate,
  parseStreamId,
  parseTimestamp,
} from './event.js';

const now = () => new Date('2025-06-01T12:00:00Z');

describe('normalizeCreate', () => {
  it('applies the seed defaults and a UUIDv7 id', () => {
    const result = normalizeCreate({ event_type: 'user.created' }, 'body', now);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.event).toMatchObject({
      eventType: 'user.created',
      eventSource: 'backend',
      eventCategory: 'user_action',
      data: {},
      metadata: {},
      context: null,
      stream: null,
      expectedVersion: 'any',
      timestamp: now(),
      clientEventId: false,
    });
    expect(result.event.eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/);
  });

  it('derives the stream from entity fields or from stream_id', () => {
    const a = normalizeCreate({ event_type: 't', entity_type: 'user', entity_id: 'u:1' }, 'body', now);
    const b = normalizeCreate({ event_type: 't', stream_id: 'user:u:1' }, 'body', now);
    expect(a.ok && a.event.stream).toEqual({ streamId: 'user:u:1', entityType: 'user', entityId: 'u:1' });
    expect(b.ok && b.event.stream).toEqual({ streamId: 'user:u:1', entityType: 'user', entityId: 'u:1' });
  });

  it('names every inconsistent field', () => {
    const result = normalizeCreate(
      { event_type: 't', stream_id: 'nocolon', timestamp: '0000-01-01T00:00:00Z', data: { s: 'a\u0000b' } },
      'body[2]',
      now,
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => e.path)).toEqual([
      'body[2].stream_id',
      'body[2].timestamp',
      'body[2].data.s',
    ]);
  });

  it('requires a stream for expected_version and both entity fields', () => {
    const a = normalizeCreate({ event_type: 't', expected_version: 3 }, 'body', now);
    const b = normalizeCreate({ event_type: 't', entity_type: 'x' }, 'body', now);
    expect(!a.ok && a.errors[0]!.path).toBe('body.expected_version');
    expect(!b.ok && b.errors[0]!.path).toBe('body.entity_id');
  });

  it('hashes content independently of key order, not of the ids', () => {
    const a = normalizeCreate({ event_type: 't', data: { a: 1, b: 2 }, idempotency_key: 'x' }, 'body', now);
    const b = normalizeCreate({ event_type: 't', data: { b: 2, a: 1 }, idempotency_key: 'y' }, 'body', now);
    const c = normalizeCreate({ event_type: 't', data: { a: 1, b: 3 } }, 'body', now);
    expect(a.ok && b.ok && a.event.contentHash === b.event.contentHash).toBe(true);
    expect(a.ok && c.ok && a.event.contentHash !== c.event.contentHash).toBe(true);
  });

  it('hashes only events that can be repeated (a client event_id or an idempotency key)', () => {
    const withId = normalizeCreate({ event_type: 't', event_id: 'e-1' }, 'body', now);
    const withKey = normalizeCreate({ event_type: 't', idempotency_key: 'k' }, 'body', now);
    const neither = normalizeCreate({ event_type: 't' }, 'body', now, { serverEventId: 'chosen' });
    expect(withId.ok && withId.event.contentHash).toMatch(/^[0-9a-f]{64}$/);
    expect(withKey.ok && withKey.event.contentHash).toMatch(/^[0-9a-f]{64}$/);
    expect(neither.ok && neither.event).toMatchObject({
      eventId: 'chosen',
      clientEventId: false,
      contentHash: null,
    });
  });
});

describe('helpers', () => {
  it('parseStreamId splits at the first colon', () => {
    expect(parseStreamId('a:b:c')).toEqual({ streamId: 'a:b:c', entityType: 'a', entityId: 'b:c' });
    expect(parseStreamId(':b')).toBeNull();
    expect(parseStreamId('a:')).toBeNull();
  });
  it('parseTimestamp refuses what PostgreSQL cannot store', () => {
    expect(parseTimestamp('2025-01-01T00:00:00Z')).toEqual(new Date('2025-01-01T00:00:00Z'));
    expect(parseTimestamp('0000-12-31T00:00:00Z')).toBeNull();
    expect(parseTimestamp('9999-12-31T12:00:00Z')).toBeNull();
  });
  it('findUnstorableString finds NUL, lone surrogates and keys', () => {
    expect(findUnstorableString({ a: ['ok', 'x\u0000'] }, 'body')).toMatchObject({ path: 'body.a[1]' });
    expect(findUnstorableString({ a: '\ud800' }, 'body')).toMatchObject({ path: 'body.a' });
    expect(findUnstorableString({ ['k\u0000']: 1 }, 'body')).toMatchObject({ path: 'body' });
    expect(findUnstorableString({ a: 'fine 😀' }, 'body')).toBeNull();
  });
  it('contentHash is stable', () => {
    expect(contentHash({ b: 1, a: [1, { y: 2, x: 1 }] })).toBe(contentHash({ a: [1, { x: 1, y: 2 }], b: 1 }));
  });
});
