/**
 * NATS JetStream bus (official client, @nats-io/*). The connection is made in the background and
 * kept up by the client's reconnect loop: a NATS that is down at start-up or later never stops the
 * service; publishing fails fast with BusUnavailableError meanwhile (the outbox retries) and stream
 * definitions are applied again on every (re)connect.
 */
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { headers as natsHeaders, nanos, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import { patternCovers } from '../domain/subjects.js';
import { createJetStreamPublisher, type JetStreamPublisher } from './jetstream-publisher.js';
import {
  BusUnavailableError,
  StreamOverlapError,
  type Bus,
  type ConsumeOptions,
  type InboundMessage,
  type PublishOptions,
  type StreamSpec,
  type Subscription,
} from './bus.js';

export interface NatsBusOptions {
  servers: string;
  name?: string;
  logger?: Logger;
  publishTimeoutMs?: number;
}

interface Connected {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  publisher: JetStreamPublisher;
}

function toNatsStream(spec: StreamSpec) {
  return {
    name: spec.name,
    subjects: spec.subjects,
    max_age: nanos(spec.maxAgeMs ?? 0),
    max_bytes: spec.maxBytes ?? -1,
    duplicate_window: nanos(spec.duplicateWindowMs ?? 120_000),
  };
}

function readHeaders(msg: JsMsg): Record<string, string> {
  const out: Record<string, string> = {};
  if (!msg.headers) return out;
  for (const [key, values] of msg.headers) out[key] = values[0] ?? '';
  return out;
}

export function createNatsBus(options: NatsBusOptions): Bus {
  const log = options.logger;
  const streams = new Map<string, StreamSpec>();
  let current: Connected | null = null;
  let closed = false;
  let lastError: unknown = null;
  let connection: NatsConnection | null = null;
  /** False while the client is between connections. */
  let up = false;

  async function applyStreams(jsm: JetStreamManager): Promise<void> {
    for (const spec of streams.values()) await putStream(jsm, spec);
  }

  async function putStream(jsm: JetStreamManager, spec: StreamSpec): Promise<void> {
    const config = toNatsStream(spec);
    try {
      const info = await jsm.streams.info(spec.name);
      const subjects = [...new Set([...info.config.subjects, ...spec.subjects])];
      await jsm.streams.update(spec.name, { ...config, subjects });
    } catch (error) {
      if (!/stream not found/i.test(String((error as Error).message))) throw error;
      await jsm.streams.add(config);
    }
  }

  // Our own loop until the first connection (so that close() can end it), then the client's
  // reconnect loop keeps the connection up.
  const connecting = (async () => {
    for (let attempt = 1; !closed; attempt++) {
      try {
        const nc = await connect({
          servers: options.servers.split(',').map((s) => s.trim()),
          name: options.name ?? 'event-service',
          reconnect: true,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 1000,
          // The client otherwise builds an Error (a stack trace) for every request, a JetStream
          // publish included, in case it fails: 9 % of the service's CPU at 2,500 collector
          // requests/s (profiled). Our logs carry the error and the subject instead.
          noAsyncTraces: true,
        });
        connection = nc;
        if (closed) break;
        const jsm = await jetstreamManager(nc);
        await applyStreams(jsm);
        current = {
          nc,
          js: jetstream(nc),
          jsm,
          publisher: createJetStreamPublisher(nc, options.publishTimeoutMs ?? 5000),
        };
        up = true;
        lastError = null;
        log?.info({ servers: options.servers }, 'connected to NATS');
        void watch(nc, jsm);
        return;
      } catch (error) {
        lastError = error;
        if (connection && !connection.isClosed()) await connection.close().catch(() => undefined);
        connection = null;
        if (attempt === 1 || attempt % 30 === 0)
          log?.warn({ err: error, attempt }, 'NATS not reachable, retrying');
        await sleep(Math.min(2000, 100 * 2 ** attempt));
      }
    }
  })();

  async function watch(nc: NatsConnection, jsm: JetStreamManager): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        up = false;
        log?.warn('NATS disconnected');
      } else if (status.type === 'reconnect') {
        up = true;
        log?.info('NATS reconnected');
        await applyStreams(jsm).catch((error: unknown) =>
          log?.warn({ err: error }, 'could not apply streams'),
        );
      }
    }
  }

  function require(): Connected {
    if (!current || !up || current.nc.isClosed()) {
      throw new BusUnavailableError('NATS is not connected', { cause: lastError ?? undefined });
    }
    return current;
  }

  function consume(opts: ConsumeOptions): Subscription {
    let stopping = false;
    const loop = (async () => {
      let failures = 0;
      let ready = false;
      while (!stopping) {
        try {
          const { js, jsm } = require();
          if (!ready) {
            const config = {
              durable_name: opts.durable,
              ack_policy: AckPolicy.Explicit,
              deliver_policy: DeliverPolicy.All,
              // One filter as `filter_subject`: `filter_subjects` needs nats-server 2.10.
              ...(opts.filterSubjects.length === 1
                ? { filter_subject: opts.filterSubjects[0] }
                : { filter_subjects: opts.filterSubjects }),
              max_deliver: opts.maxDeliver ?? -1,
              ack_wait: nanos(opts.ackWaitMs ?? 30_000),
              max_ack_pending: Math.max(1000, opts.maxBatch * 4),
            };
            try {
              await jsm.consumers.info(opts.stream, opts.durable);
              await jsm.consumers.update(opts.stream, opts.durable, config);
            } catch (error) {
              if (!/consumer not found/i.test(String((error as Error).message))) throw error;
              await jsm.consumers.add(opts.stream, config);
            }
            ready = true;
          }
          const consumer = await js.consumers.get(opts.stream, opts.durable);
          const fetched = await consumer.fetch({ max_messages: opts.maxBatch, expires: 1000 });
          await handleAsTheyCome(fetched, opts);
          failures = 0;
        } catch (error) {
          failures++;
          if (failures === 1 || failures % 30 === 0)
            log?.warn({ err: error, durable: opts.durable }, 'consumer fetch failed');
          if (!(error instanceof BusUnavailableError)) ready = false;
          await sleep(Math.min(5000, 100 * 2 ** Math.min(failures, 6)));
        }
      }
    })();
    return {
      async stop() {
        stopping = true;
        await loop;
      },
    };
  }

  /**
   * Hands the messages of one pull to `handle` while the pull is still open: what arrived so far
   * goes as one batch as soon as the handler is free, so a lone message is handled at once instead
   * of when the pull expires, and messages that pile up behind a slow batch form the next one.
   * After a failed batch the rest of the pull is given back (nak) and the error rethrown.
   */
  async function handleAsTheyCome(fetched: AsyncIterable<JsMsg>, opts: ConsumeOptions): Promise<void> {
    const buffer: JsMsg[] = [];
    let worker: Promise<void> | null = null;
    let failure: { error: unknown } | null = null;
    const work = async () => {
      await new Promise((resolve) => setImmediate(resolve));
      while (buffer.length > 0) {
        const batch = buffer.splice(0, opts.maxBatch);
        if (failure) {
          for (const msg of batch) msg.nak(1000);
          continue;
        }
        try {
          await handleBatch(batch, opts);
        } catch (error) {
          failure = { error };
        }
      }
      worker = null;
    };
    try {
      for await (const msg of fetched) {
        buffer.push(msg);
        worker ??= work();
      }
    } finally {
      // Also when the pull breaks off: the batch in hand is finished before anything else.
      while (worker) await worker;
    }
    if (failure) throw (failure as { error: unknown }).error;
  }

  async function handleBatch(batch: JsMsg[], opts: ConsumeOptions): Promise<void> {
    const answered = new Set<number>();
    const messages: InboundMessage[] = batch.map((msg, i) => ({
      subject: msg.subject,
      data: msg.data,
      headers: readHeaders(msg),
      streamSequence: msg.info.streamSequence,
      stream: msg.info.stream,
      deliveryCount: msg.info.deliveryCount,
      time: new Date(Math.floor(msg.info.timestampNanos / 1e6)),
      ack: () => {
        answered.add(i);
        msg.ack();
      },
      nak: (delayMs) => {
        answered.add(i);
        msg.nak(delayMs);
      },
      term: () => {
        answered.add(i);
        // Without a reason: nats-server before 2.10 ignores `+TERM <reason>` altogether, leaving
        // the message pending (and redelivered after ack_wait).
        msg.term();
      },
    }));
    try {
      await opts.handle(messages);
    } finally {
      batch.forEach((msg, i) => {
        if (!answered.has(i)) msg.nak(1000);
      });
    }
  }

  return {
    kind: 'nats',
    get connected() {
      return current !== null && up && !current.nc.isClosed();
    },
    async ensureStream(spec) {
      streams.set(spec.name, spec);
      if (current) await putStream(current.jsm, spec);
    },
    async findStream(subject) {
      const { jsm } = require();
      const names: string[] = [];
      for await (const name of jsm.streams.names(subject)) names.push(name);
      const partial: string[] = [];
      for (const name of names) {
        const info = await jsm.streams.info(name);
        if (info.config.subjects.some((pattern) => patternCovers(pattern, subject))) return name;
        partial.push(name);
      }
      if (partial.length > 0) throw new StreamOverlapError(subject, partial);
      return null;
    },
    async publish(subject, data, publishOptions?: PublishOptions) {
      const { publisher } = require();
      let hdrs;
      if (publishOptions?.headers || publishOptions?.msgId !== undefined) {
        hdrs = natsHeaders();
        for (const [key, value] of Object.entries(publishOptions.headers ?? {})) hdrs.set(key, value);
        if (publishOptions.msgId !== undefined) hdrs.set('Nats-Msg-Id', publishOptions.msgId);
      }
      try {
        await publisher.publish(subject, data, hdrs);
      } catch (error) {
        throw new BusUnavailableError(`publish to ${subject} failed: ${(error as Error).message}`, {
          cause: error,
        });
      }
    },
    consume,
    async check() {
      require();
      const { nc } = require();
      await nc.flush();
    },
    async close() {
      closed = true;
      await connecting;
      const nc = current?.nc ?? connection;
      if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close());
      current?.publisher.close();
    },
  };
}
