/**
 * Durable consumers that turn JetStream messages into stored events: `event-service` on
 * `events.backend.>` (backend services) and `event-service-frontend` on `events.frontend.>` (what
 * the frontend collector published). A fetched batch is mapped (pure: `map`), appended in one
 * transaction (`appendEach`: one unit per message, so one bad message never blocks the others),
 * and only then acknowledged. Redeliveries are idempotent repeats (idempotency key or client
 * event id). A message that can never be stored is recorded as a dead letter and terminated; when
 * the store cannot be reached nothing is acknowledged: the batch is given back (nak with a delay)
 * and delivered again later.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Bus, InboundMessage, StreamSpec, Subscription } from '../bus/bus.js';
import { patternCovers } from '../domain/subjects.js';
import type { AppendUnit, EventStore } from '../store/index.js';
import { recordDeadLetter } from '../store/outbox.js';
import { messageIdOf, type MappedMessage } from './backend.js';

/** The stream created to capture both ingest subjects when no stream captures them yet. */
export const INGEST_STREAM = 'events-ingest';
export const BACKEND_SUBJECTS = 'events.backend.>';
export const FRONTEND_SUBJECTS = 'events.frontend.>';
export const BACKEND_DURABLE = 'event-service';
export const FRONTEND_DURABLE = 'event-service-frontend';
/** Dead letters of the NATS consumers carry this channel. */
export const NATS_CHANNEL = 'nats';

export interface IngestConsumerOptions {
  bus: Bus;
  store: EventStore;
  logger?: Logger;
  /** Durable consumer name; instances sharing it share the work. */
  durable: string;
  /** Subjects this consumer reads (one pattern). */
  filterSubject: string;
  /**
   * The stream to create when no stream captures `filterSubject` yet; when one does (e.g. a
   * platform-wide `events.>` stream), that stream is consumed instead.
   */
  stream: StreamSpec;
  map: (message: InboundMessage) => MappedMessage;
  /** Most messages appended in one transaction (default 500). */
  maxBatch?: number;
  /** Redelivery delay after the store failed, ms (default 5000). */
  retryDelayMs?: number;
}

export interface IngestConsumer {
  /** Stops fetching and waits for the batch in hand (committed and acknowledged, or given back). */
  stop(): Promise<void>;
}

export function ingestStreamSpec(limits: Omit<StreamSpec, 'name' | 'subjects'> = {}): StreamSpec {
  return { name: INGEST_STREAM, subjects: [BACKEND_SUBJECTS, FRONTEND_SUBJECTS], ...limits };
}

/**
 * The stream that captures `subject`: an existing one, else `spec` (created, with those of its
 * subjects no other stream captures yet).
 */
export async function resolveStream(bus: Bus, spec: StreamSpec, subject: string): Promise<string> {
  const existing = await bus.findStream(subject);
  if (existing !== null) return existing;
  const subjects: string[] = [];
  for (const wanted of spec.subjects) {
    const owner = wanted === subject ? null : await bus.findStream(wanted).catch(() => 'overlap');
    if (owner === null || owner === spec.name) subjects.push(wanted);
  }
  const covered = subjects.some((pattern) => patternCovers(pattern, subject));
  await bus.ensureStream({ ...spec, subjects: covered ? subjects : [...subjects, subject] });
  return spec.name;
}

/** Text PostgreSQL can store: no NUL characters. */
function storable(text: string): string {
  return text.replaceAll('\u0000', '\uFFFD');
}

const lenient = new TextDecoder('utf-8');

/** The dead-letter id of a message: its message id, or a digest when too long for the column. */
function deadLetterId(message: InboundMessage): string {
  const id = storable(messageIdOf(message));
  return id.length <= 255 ? id : `sha256:${createHash('sha256').update(id).digest('hex')}`;
}

export function startIngestConsumer(options: IngestConsumerOptions): IngestConsumer {
  const { bus, store, logger } = options;
  const log = logger?.child({ consumer: options.durable });
  const retryDelayMs = options.retryDelayMs ?? 5000;
  let stopping = false;
  let subscription: Subscription | null = null;
  let wake: (() => void) | null = null;

  async function deadLetter(message: InboundMessage, error: string): Promise<void> {
    await recordDeadLetter(store.db, {
      channel: NATS_CHANNEL,
      subject: storable(message.subject).slice(0, 512),
      message_id: deadLetterId(message),
      payload: storable(lenient.decode(message.data)),
      headers: Object.fromEntries(
        Object.entries(message.headers).map(([key, value]) => [storable(key), storable(value)]),
      ),
      error: storable(error),
    });
  }

  async function handle(messages: InboundMessage[]): Promise<void> {
    const units: AppendUnit[] = [];
    const appended: InboundMessage[] = [];
    const poison: { message: InboundMessage; error: string }[] = [];
    for (const message of messages) {
      let mapped: MappedMessage;
      try {
        mapped = options.map(message);
      } catch (error) {
        mapped = { ok: false, error: `could not be mapped: ${(error as Error).message}` };
      }
      if (mapped.ok) {
        units.push({ events: [mapped.event] });
        appended.push(message);
      } else {
        poison.push({ message, error: mapped.error });
      }
    }
    let outcomes;
    try {
      outcomes = await store.appendEach(units);
    } catch (error) {
      // Nothing was committed: every message comes back later.
      for (const message of messages) message.nak(retryDelayMs);
      throw error;
    }
    outcomes.forEach((outcome, i) => {
      const message = appended[i]!;
      if (outcome.type === 'appended') message.ack();
      else poison.push({ message, error: `refused by the store: ${outcome.error.message}` });
    });
    for (let i = 0; i < poison.length; i++) {
      const { message, error } = poison[i]!;
      try {
        await deadLetter(message, error);
      } catch (failure) {
        // Not recorded, so not terminated: it comes back, and is recorded then.
        for (const rest of poison.slice(i)) rest.message.nak(retryDelayMs);
        throw failure;
      }
      message.term();
      log?.warn(
        { subject: message.subject, message_id: messageIdOf(message), error },
        'NATS message cannot become an event: recorded as a dead letter',
      );
    }
  }

  const starting = (async () => {
    for (let attempt = 1; !stopping; attempt++) {
      try {
        const stream = await resolveStream(bus, options.stream, options.filterSubject);
        if (stopping) return;
        subscription = bus.consume({
          stream,
          durable: options.durable,
          filterSubjects: [options.filterSubject],
          maxBatch: options.maxBatch ?? 500,
          handle,
        });
        log?.info({ stream, subject: options.filterSubject }, 'NATS ingest consumer started');
        return;
      } catch (error) {
        // NATS down (the bus reconnects by itself) or a conflicting stream: keep trying.
        if (attempt === 1 || attempt % 30 === 0)
          log?.warn({ err: error, attempt }, 'NATS ingest consumer cannot start yet, retrying');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.min(5000, 100 * 2 ** Math.min(attempt, 6)));
          function done() {
            clearTimeout(timer);
            wake = null;
            resolve();
          }
          wake = done;
        });
      }
    }
  })();

  return {
    async stop() {
      stopping = true;
      wake?.();
      await starting;
      await subscription?.stop();
    },
  };
}
