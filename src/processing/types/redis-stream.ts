/**
 * `redis_stream`: appends the event to a Redis stream with XADD (the seeds' Redis Streams
 * architecture: `events:{event_type}` streams read by consumer groups). Entry fields: `event_id`,
 * `event_type`, `event_source`, `event_category`, `event` (the whole event as JSON). Optional
 * `maxlen` trims the stream with `MAXLEN ~ n` (approximate: cheap, keeps at least n entries).
 *
 * Config: `{url, stream, maxlen?}`; the stream name may carry `{event_type}`, `{event_source}`,
 * `{event_category}`. One connection per URL, commands fail fast while it is down (no offline
 * queue, so nothing is sent late behind the engine's back) and it reconnects by itself.
 */
import { createClient, type RedisClientType } from '@redis/client';
import type { Logger } from 'pino';
import type { ProcessorResult, ProcessorType } from '../processor-type.js';
import { ConfigChecker, expandTemplate, placeholderProblem } from './checks.js';
import { ConnectionPool, within } from './pool.js';

export interface RedisStreamConfig {
  url: string;
  stream: string;
  maxlen?: number;
}

const CONNECT_TIMEOUT_MS = 5000;

export function redisStreamProcessorType(deps: { logger?: Logger }): ProcessorType & {
  close(): Promise<void>;
} {
  const pool = new ConnectionPool<RedisClientType>(
    async (url) => {
      let connected = false;
      const client = createClient({
        url,
        disableOfflineQueue: true,
        socket: {
          connectTimeout: CONNECT_TIMEOUT_MS,
          // The first connection fails fast (the run is retried by the engine); a connection
          // that worked reconnects by itself with backoff.
          reconnectStrategy: (retries: number, cause: Error) =>
            connected ? Math.min(100 * 2 ** Math.min(retries, 5), 3000) : cause,
        },
      }) as unknown as RedisClientType;
      let reported = 0;
      // Without a listener an error event would crash the process.
      client.on('error', (error: Error) => {
        if (Date.now() - reported > 30_000) {
          reported = Date.now();
          deps.logger?.warn({ err: error, url: redact(url) }, 'redis_stream processor: connection error');
        }
      });
      try {
        await within(
          client.connect(),
          CONNECT_TIMEOUT_MS,
          new AbortController().signal,
          'connecting to Redis',
        );
        connected = true;
      } catch (error) {
        client.destroy();
        throw error;
      }
      return client;
    },
    async (client) => {
      if (client.isOpen) await client.close();
    },
  );

  return {
    description: 'XADD the event to a Redis stream: config.url, config.stream, config.maxlen? (MAXLEN ~)',
    validate(config) {
      const check = new ConfigChecker(config, ['url', 'stream', 'maxlen']);
      check.url('url', ['redis:', 'rediss:']);
      const stream = check.string('stream', { required: true, maxLength: 512 });
      if (stream !== undefined) {
        const problem = placeholderProblem(stream);
        if (problem) check.problem('stream', problem);
      }
      check.integer('maxlen', 1, Number.MAX_SAFE_INTEGER);
      return check.problems;
    },
    async run(event, rawConfig, context): Promise<ProcessorResult> {
      const config = rawConfig as unknown as RedisStreamConfig;
      const stream = expandTemplate(config.stream, event);
      const client = await within(
        pool.get(config.url),
        context.timeoutMs,
        context.signal,
        'connecting to Redis',
      );
      let id: unknown;
      try {
        id = await within(
          client.xAdd(
            stream,
            '*',
            {
              event_id: event.event_id,
              event_type: event.event_type,
              event_source: event.event_source,
              event_category: event.event_category,
              event: context.eventJson(),
            },
            config.maxlen === undefined
              ? undefined
              : { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: config.maxlen } },
          ),
          context.timeoutMs,
          context.signal,
          'XADD',
        );
      } catch (error) {
        // The key holds something other than a stream: no retry will change that.
        if (error instanceof Error && error.message.startsWith('WRONGTYPE')) {
          return { type: 'failed', message: `${stream}: ${error.message}` };
        }
        throw error;
      }
      return { type: 'success', message: `${stream} ${String(id)}` };
    },
    close: () => pool.close(),
  };
}

/** A URL without its password, for logs. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(invalid url)';
  }
}
