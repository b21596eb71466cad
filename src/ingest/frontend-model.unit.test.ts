import { describe, expect, it } from 'vitest';
import { EventCategory } from '../domain/event.js';
import { toEvent } from './backend.js';
import {
  categorizeFrontendEvent,
  frontendMetadata,
  frontendSubject,
  mapFrontendMessage,
  toFrontendInput,
  type RequestClient,
} from './frontend-model.js';

const CLIENT: RequestClient = {
  ip: '203.0.113.9',
  userAgent: 'Mozilla/5.0',
  referer: 'https://app.example.com/',
};
const RECEIVED = new Date('2026-03-01T10:00:00.000Z');

describe('categorizeFrontendEvent', () => {
  it.each([
    // an EventCategory value is kept (any case)
    ['click', 'x', EventCategory.CLICK],
    ['PAGE_VIEW', 'x', EventCategory.PAGE_VIEW],
    ['error', 'x', EventCategory.ERROR],
    ['performance', 'x', EventCategory.PERFORMANCE],
    // aliases
    ['user_interaction', 'button_click', EventCategory.USER_ACTION],
    ['pageview', 'x', EventCategory.PAGE_VIEW],
    ['form', 'x', EventCategory.FORM_SUBMIT],
    ['navigation', 'x', EventCategory.PAGE_VIEW],
    // words of the category, then of the event type
    ['button-click', 'x', EventCategory.CLICK],
    ['checkout_form', 'x', EventCategory.FORM_SUBMIT],
    ['misc', 'button_click', EventCategory.CLICK],
    [null, 'page_view', EventCategory.PAGE_VIEW],
    [undefined, 'signup_form_submitted', EventCategory.FORM_SUBMIT],
    [undefined, 'js_error', EventCategory.ERROR],
    ['', 'scrolled', EventCategory.USER_ACTION],
    [undefined, 'video_played', EventCategory.USER_ACTION],
  ])('category %s, type %s → %s', (category, type, expected) => {
    expect(categorizeFrontendEvent(category, type)).toBe(expected);
  });
});

describe('frontendSubject', () => {
  it('is events.frontend.{category}.{event_type} with sanitized tokens', () => {
    expect(frontendSubject(EventCategory.CLICK, 'button_click')).toBe('events.frontend.click.button_click');
    expect(frontendSubject(EventCategory.CLICK, 'a.b *>c d')).toBe('events.frontend.click.a_b_c_d');
  });
});

describe('frontendMetadata', () => {
  it('merges client_info under the event metadata, and server-captured fields over both', () => {
    const metadata = frontendMetadata(
      {
        event_type: 'x',
        page_url: 'https://app.example.com/dashboard',
        metadata: { browser: 'Chrome', locale: 'fr', client_ip: '6.6.6.6' },
      },
      { locale: 'en', app_version: '1.2.3', user_agent: 'forged' },
      CLIENT,
    );
    expect(metadata).toEqual({
      locale: 'fr',
      app_version: '1.2.3',
      browser: 'Chrome',
      page_url: 'https://app.example.com/dashboard',
      client_ip: '203.0.113.9',
      user_agent: 'Mozilla/5.0',
      referer: 'https://app.example.com/',
      ingest_channel: 'frontend',
    });
  });

  it('keeps fields outside the model in extra_fields, and the given category', () => {
    const metadata = frontendMetadata(
      { event_type: 'x', category: 'user_interaction', anonymous_id: 'a-1', screen: { w: 1 } },
      null,
      { ip: '1.2.3.4', userAgent: undefined, referer: undefined },
    );
    expect(metadata).toEqual({
      extra_fields: { anonymous_id: 'a-1', screen: { w: 1 } },
      category: 'user_interaction',
      client_ip: '1.2.3.4',
      ingest_channel: 'frontend',
    });
  });

  it('keeps a key named __proto__ as a plain key', () => {
    const metadata = frontendMetadata(
      JSON.parse('{"event_type":"x","metadata":{"__proto__":{"polluted":true}}}') as { event_type: string },
      null,
      CLIENT,
    );
    expect(Object.hasOwn(metadata, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('toFrontendInput and mapFrontendMessage', () => {
  it('fixes id and time at the collector', () => {
    const { subject, input } = toFrontendInput(
      { event_type: 'button_click', category: 'user_interaction', user_id: 'u-1', data: { id: 'b' } },
      null,
      CLIENT,
      RECEIVED,
    );
    expect(subject).toBe('events.frontend.user_action.button_click');
    expect(input).toMatchObject({
      event_type: 'button_click',
      event_source: 'frontend',
      event_category: 'user_action',
      user_id: 'u-1',
      session_id: null,
      data: { id: 'b' },
      timestamp: RECEIVED.toISOString(),
    });
    expect(input.event_id).toMatch(/^[0-9a-f-]{36}$/);
    const given = toFrontendInput(
      { event_type: 'x', event_id: 'client-1', timestamp: '2026-01-01T00:00:00Z' },
      null,
      CLIENT,
      RECEIVED,
    );
    expect(given.input.event_id).toBe('client-1');
    expect(given.input.timestamp).toBe('2026-01-01T00:00:00Z');
  });

  it('stores the same event directly or after a trip through JetStream', () => {
    const { input } = toFrontendInput(
      { event_type: 'page_view', page_url: 'https://x.test/', data: { n: 1.5 } },
      { app: 'web' },
      CLIENT,
      RECEIVED,
    );
    const direct = toEvent(structuredClone(input), new Date(0), 'body');
    const consumed = mapFrontendMessage(
      {
        subject: 'events.frontend.page_view.page_view',
        data: new TextEncoder().encode(JSON.stringify(input)),
        headers: { 'Nats-Msg-Id': input.event_id },
        stream: 'events-ingest',
        streamSequence: 9,
        time: new Date(1),
      },
      () => new Date(2),
    );
    expect(direct.ok && consumed.ok).toBe(true);
    if (!direct.ok || !consumed.ok) return;
    expect(consumed.event.eventId).toBe(input.event_id);
    expect(consumed.event.clientEventId).toBe(true);
    expect(consumed.event.contentHash).toBe(direct.event.contentHash);
    expect(consumed.event.timestamp).toEqual(RECEIVED);
    expect(consumed.event.eventCategory).toBe('page_view');
  });

  it('deduplicates a foreign message without event_id by its NATS message id', () => {
    const mapped = mapFrontendMessage(
      {
        subject: 'events.frontend.click.cta',
        data: new TextEncoder().encode(JSON.stringify({ event_type: 'cta_click' })),
        headers: {},
        stream: 'events-ingest',
        streamSequence: 5,
      },
      () => RECEIVED,
    );
    expect(mapped.ok && mapped.event).toMatchObject({
      eventSource: 'frontend',
      eventCategory: 'click',
      idempotencyKey: 'nats:events-ingest:5',
      clientEventId: false,
    });
  });

  it('refuses a message without event_type or with unknown fields', () => {
    const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    const base = { subject: 's', headers: {}, stream: 'x', streamSequence: 1 };
    expect(mapFrontendMessage({ ...base, data: bytes({}) }, () => RECEIVED)).toMatchObject({ ok: false });
    const unknown = mapFrontendMessage(
      { ...base, data: bytes({ event_type: 'x', nope: 1 }) },
      () => RECEIVED,
    );
    expect(unknown.ok).toBe(false);
    if (!unknown.ok) expect(unknown.error).toMatch(/message\.nope is not an allowed field/);
  });
});
