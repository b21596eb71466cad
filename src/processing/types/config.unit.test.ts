import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryBus } from '../../bus/memory.js';
import { expandSubject, expandTemplate, subjectProblem } from './checks.js';
import { createProcessorTypes } from './index.js';

const bus = createMemoryBus();
const types = createProcessorTypes({ bus, allowPrivateNetworks: false });
afterAll(async () => {
  await types.close();
  await bus.close();
});

const paths = async (type: string, config: Record<string, unknown>, allowPrivateNetworks = false) =>
  (await types.get(type)!.validate(config, { allowPrivateNetworks })).map((p) => p.path);

describe('webhook config', () => {
  it('accepts url, headers and timeout_ms', async () => {
    expect(
      await paths(
        'webhook',
        { url: 'http://127.0.0.1:9/x', headers: { authorization: 'Bearer t' }, timeout_ms: 500 },
        true,
      ),
    ).toEqual([]);
  });
  it('names each bad field', async () => {
    expect(
      await paths(
        'webhook',
        {
          url: 'ftp://example.com',
          headers: { 'bad name': 'x', host: 'y', 'x-n': 3 },
          timeout_ms: 0,
          extra: 1,
        },
        true,
      ),
    ).toEqual(['extra', 'url', 'headers.bad name', 'headers.host', 'headers.x-n', 'timeout_ms']);
    expect(await paths('webhook', {})).toEqual(['url']);
    expect(await paths('webhook', { url: 'https://ok.example', headers: { x: 'a\r\nb' } }, true)).toEqual([
      'headers.x',
    ]);
  });
  it('refuses loopback, private and metadata addresses unless allowed', async () => {
    for (const url of [
      'http://127.0.0.1/',
      'http://10.1.2.3/',
      'http://169.254.169.254/latest',
      'http://[::1]:80/',
    ]) {
      const problems = await types.get('webhook')!.validate({ url }, { allowPrivateNetworks: false });
      expect(problems, url).toEqual([
        { path: 'url', message: expect.stringMatching(/loopback|private|internal/) },
      ]);
    }
    expect(await paths('webhook', { url: 'http://127.0.0.1/' }, true)).toEqual([]);
  });
});

describe('publish config', () => {
  it('accepts a subject, with placeholders', async () => {
    expect(await paths('publish', { subject: 'processed.orders' })).toEqual([]);
    expect(await paths('publish', { subject: 'out.{event_source}.{event_type}' })).toEqual([]);
  });
  it('refuses wildcards, empty tokens, unknown placeholders and the ingested subjects', async () => {
    for (const subject of [
      'a.*',
      'a.>',
      'a..b',
      'a b',
      'out.{user}',
      'events.backend.x',
      'events.frontend.{event_type}',
    ]) {
      expect(await paths('publish', { subject }), subject).toEqual(['subject']);
    }
    expect(await paths('publish', {})).toEqual(['subject']);
  });
});

describe('redis_stream config', () => {
  it('accepts url, stream and maxlen', async () => {
    expect(
      await paths('redis_stream', {
        url: 'redis://127.0.0.1:6379',
        stream: 'events:{event_type}',
        maxlen: 1000,
      }),
    ).toEqual([]);
  });
  it('names each bad field', async () => {
    expect(await paths('redis_stream', { url: 'http://x', stream: '', maxlen: -1 })).toEqual([
      'url',
      'stream',
      'maxlen',
    ]);
    expect(await paths('redis_stream', { stream: 's' })).toEqual(['url']);
  });
});

describe('rabbitmq config', () => {
  it('accepts url, exchange (the default exchange too) and routing_key', async () => {
    expect(
      await paths('rabbitmq', {
        url: 'amqp://guest:guest@127.0.0.1:5672',
        exchange: 'events',
        routing_key: '{event_type}',
      }),
    ).toEqual([]);
    expect(await paths('rabbitmq', { url: 'amqps://h', exchange: '', routing_key: 'queue-name' })).toEqual(
      [],
    );
  });
  it('names each bad field', async () => {
    expect(await paths('rabbitmq', { url: 'redis://x', exchange: 1, routing_key: 'a{b}' })).toEqual([
      'url',
      'exchange',
      'routing_key',
    ]);
    expect(await paths('rabbitmq', {})).toEqual(['url', 'exchange', 'routing_key']);
  });
});

describe('placeholders', () => {
  const event = {
    event_type: 'user.created',
    event_source: 'backend',
    event_category: 'user_lifecycle',
  } as const;
  it('expand in names as they are', () => {
    expect(expandTemplate('events:{event_type}', event)).toBe('events:user.created');
  });
  it('expand in subjects as sanitized tokens, keeping the dots of the event type', () => {
    expect(expandSubject('out.{event_source}.{event_type}', event)).toBe('out.backend.user.created');
    expect(expandSubject('out.{event_type}', { ...event, event_type: 'a b.*.>' })).toBe('out.a_b._._');
    expect(subjectProblem('out.{event_type}')).toBeNull();
  });
});

describe('custom types', () => {
  it('join the built-ins and may replace one; bad names are refused', async () => {
    const custom = createProcessorTypes({
      bus,
      allowPrivateNetworks: false,
      custom: { audit_log: { validate: () => [], run: async () => undefined } },
    });
    expect(custom.names()).toEqual(['audit_log', 'publish', 'rabbitmq', 'redis_stream', 'webhook']);
    await custom.close();
    expect(() =>
      createProcessorTypes({
        bus,
        allowPrivateNetworks: false,
        custom: { 'Bad Name': { validate: () => [], run: async () => undefined } },
      }),
    ).toThrow(/processor type name/);
  });
});
