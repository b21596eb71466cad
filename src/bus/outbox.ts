/**
 * The outbox relay: publishes what the store has committed, in position order, exactly once in the
 * JetStream stream. `event.stored` comes straight from the events table, the other lifecycle
 * messages from the outbox table; both are followed gap-free (store/follower.ts) from persisted
 * checkpoints, with `Nats-Msg-Id` set so that a crash between publish and checkpoint (or a lost
 * ack) only republishes what the stream then drops as a duplicate. One instance relays at a time
 * (an advisory-lock lease); the others stand by and take over when its connection goes.
 *
 * The events its own instance appended are handed to the relay (`appended`) and kept, bounded,
 * until published: the relay then follows positions only and reads back just the rows it does not
 * hold (other instances' appends, or what did not fit). Order and gap-freeness come from the
 * positions read, never from what was handed over.
 */
import type { Logger } from 'pino';
import type { StoredEvent } from '../domain/event.js';
import type { Db, Lease } from '../store/db.js';
import {
  EVENTS_SOURCE,
  OUTBOX_SOURCE,
  readEventsAt,
  readNext,
  readNextPositions,
  type FollowResult,
  type FollowSource,
  type OutboxRow,
} from '../store/follower.js';
import { loadCheckpoint, pruneOutbox, saveCheckpoint } from '../store/outbox.js';
import type { Metrics } from '../observability/metrics.js';
import { traceHeaders, traceOfMetadata } from '../observability/trace-context.js';
import { startLoop, type Loop } from '../workers/loop.js';
import { encodeJson, encodeText, type Bus } from './bus.js';
import { envelope, LifecycleSubject } from './envelope.js';

/** Arbitrary constant: "event-service outbox relay". */
export const RELAY_LEASE_KEY = 7_235_180_043;

const CHECKPOINT_EVERY_MS = 200;

/** Names of the relay's rows in `event.relay_checkpoints`. */
export const RELAY_CHECKPOINTS = { events: 'event.stored', outbox: 'outbox' } as const;
/** How often published outbox rows are deleted, ms, and at most how many at a time. */
const PRUNE_EVERY_MS = 1_000;
const PRUNE_MAX_ROWS = 20_000;
/** Most appended events kept for publishing; beyond, the oldest are read back from the database. */
const HELD_MAX = 20_000;

export interface RelayOptions {
  db: Db;
  bus: Bus;
  logger?: Logger;
  batchSize?: number;
  idleMs?: number;
  /** Least time between two runs under a stream of appends (loop.ts), ms. */
  minIntervalMs?: number;
  now?: () => Date;
  /** Published counts, commit-to-publish lag and leadership (`event_service_relay_*`). */
  metrics?: Metrics;
  /**
   * How long a published lifecycle message stays in `event.outbox` (for inspection) before the
   * relay deletes it, ms (`OUTBOX_RETENTION_MS`). Default one minute.
   */
  outboxRetentionMs?: number;
}

export interface RelayStats {
  leader: boolean;
  published: number;
  /** Commit-to-publish delay of the last published event, ms. */
  lastLagMs: number | null;
  eventsCheckpoint: number;
  outboxCheckpoint: number;
}

export interface Relay extends Loop {
  /** Events this instance just committed, in position order: kept to publish, and wakes the relay. */
  appended(events: readonly StoredEvent[]): void;
  stats(): RelayStats;
}

interface Followed<T extends { position: number }> {
  name: string;
  /** Label `source` of the relay metrics. */
  label: 'events' | 'outbox';
  source: FollowSource;
  /** Last published position; null until loaded from the database. */
  checkpoint: number | null;
  /** Last position written to the database, and when. */
  saved: number;
  savedAt: number;
  read(checkpoint: number, limit: number): Promise<FollowResult<T>>;
  toMessage(row: T): { subject: string; msgId: string; data: Uint8Array; headers?: Record<string, string> };
  /** Called with the last row of each published batch. */
  afterPublish?(last: T): void;
}

export function startOutboxRelay(options: RelayOptions): Relay {
  const { db, bus, logger, metrics } = options;
  const now = options.now ?? (() => new Date());
  const batchSize = options.batchSize ?? 1000;
  let lease: Lease | null = null;
  const stats: RelayStats = {
    leader: false,
    published: 0,
    lastLagMs: null,
    eventsCheckpoint: 0,
    outboxCheckpoint: 0,
  };

  const retentionMs = options.outboxRetentionMs ?? 60_000;
  /**
   * Published outbox positions with their commit times, oldest first (one per batch): the rows up
   * to one whose time is past the retention may go. In memory: after a restart the first batch
   * that ages brings every older row along.
   */
  const published: { position: number; at: number }[] = [];
  let prunedAt = 0;

  /** Deletes what the retention lets go, below the saved checkpoint; bounded, once a second. */
  async function prune(): Promise<void> {
    if (Date.now() - prunedAt < PRUNE_EVERY_MS) return;
    prunedAt = Date.now();
    const horizon = now().getTime() - retentionMs;
    let upTo = 0;
    while (published.length > 0 && published[0]!.at <= horizon && published[0]!.position <= outbox.saved) {
      upTo = published.shift()!.position;
    }
    if (upTo === 0) return;
    const deleted = await pruneOutbox(db, upTo, PRUNE_MAX_ROWS);
    // More than one round's worth (a backlog after a restart): the rest goes next time.
    if (deleted === PRUNE_MAX_ROWS) published.unshift({ position: upTo, at: horizon });
  }

  /** Appended by this instance and not published yet, by position (insertion order = position order). */
  const held = new Map<number, StoredEvent>();

  async function readEvents(checkpoint: number, limit: number): Promise<FollowResult<StoredEvent>> {
    if (held.size === 0) return readNext<StoredEvent>(db, checkpoint, limit, EVENTS_SOURCE);
    const positions = await readNextPositions(db, checkpoint, limit, EVENTS_SOURCE);
    const missing = positions.filter((position) => !held.has(position));
    const fetched = new Map((await readEventsAt(db, missing)).map((event) => [event.position, event]));
    const rows = positions.map((position) => held.get(position) ?? fetched.get(position)!);
    for (const position of positions) held.delete(position);
    // Anything at or below the last position read is never read again.
    const last = positions[positions.length - 1] ?? checkpoint;
    for (const position of held.keys()) {
      if (position > last) break;
      held.delete(position);
    }
    return { events: rows, checkpoint: last };
  }

  const events: Followed<StoredEvent> = {
    name: RELAY_CHECKPOINTS.events,
    label: 'events',
    source: EVENTS_SOURCE,
    checkpoint: null,
    saved: 0,
    savedAt: 0,
    read: readEvents,
    toMessage: (event) => {
      // The trace the event was created in (its metadata): consumers continue it.
      const trace = traceOfMetadata(event.metadata);
      return {
        subject: LifecycleSubject.STORED,
        msgId: event.event_id,
        data: encodeJson(envelope(event.event_id, LifecycleSubject.STORED, event, event.created_at)),
        headers: trace ? traceHeaders(trace) : undefined,
      };
    },
  };
  const outbox: Followed<OutboxRow> = {
    name: RELAY_CHECKPOINTS.outbox,
    label: 'outbox',
    source: OUTBOX_SOURCE,
    checkpoint: null,
    saved: 0,
    savedAt: 0,
    read: (checkpoint, limit) => readNext<OutboxRow>(db, checkpoint, limit, OUTBOX_SOURCE),
    toMessage: (row) => ({
      subject: row.subject,
      msgId: row.msg_id,
      // JSON text from the database: neither parsed nor serialized again here.
      data: encodeText(row.payload),
      headers: row.headers,
    }),
    afterPublish: (last) => published.push({ position: last.position, at: last.created_at.getTime() }),
  };

  /**
   * Writes the checkpoint at most every CHECKPOINT_EVERY_MS while publishing goes on (and at
   * stop): after a crash the relay publishes again what followed the last written one, and the
   * stream drops those repeats by message id (its duplicate window is minutes long).
   */
  async function persist<T extends { position: number }>(followed: Followed<T>, force: boolean) {
    if (followed.checkpoint === null || followed.checkpoint === followed.saved) return;
    if (!force && Date.now() - followed.savedAt < CHECKPOINT_EVERY_MS) return;
    await saveCheckpoint(db, followed.name, followed.checkpoint);
    followed.saved = followed.checkpoint;
    followed.savedAt = Date.now();
  }

  async function relay<T extends { position: number; created_at: Date }>(
    followed: Followed<T>,
  ): Promise<boolean> {
    if (followed.checkpoint === null) {
      followed.checkpoint = followed.saved = await loadCheckpoint(db, followed.name);
      followed.savedAt = Date.now();
    }
    const result = await followed.read(followed.checkpoint, batchSize);
    if (result.events.length === 0) {
      await persist(followed, true);
      return false;
    }
    // Sent in order on one connection, acknowledged together.
    const settled = await Promise.allSettled(
      result.events.map((row) => {
        const message = followed.toMessage(row);
        return bus.publish(message.subject, message.data, { msgId: message.msgId, headers: message.headers });
      }),
    );
    const firstFailure = settled.findIndex((s) => s.status === 'rejected');
    if (firstFailure >= 0) {
      // Keep what the stream acknowledged in order; the rest is published again later.
      if (firstFailure > 0) followed.checkpoint = result.events[firstFailure - 1]!.position;
      await persist(followed, true);
      throw (settled[firstFailure] as PromiseRejectedResult).reason;
    }
    followed.checkpoint = result.checkpoint;
    await persist(followed, false);
    const last = result.events[result.events.length - 1]!;
    followed.afterPublish?.(last);
    const publishedAt = now().getTime();
    stats.published += result.events.length;
    stats.lastLagMs = publishedAt - last.created_at.getTime();
    if (metrics) {
      metrics.relayPublished.inc({ source: followed.label }, result.events.length);
      for (const row of result.events) {
        metrics.relayLag.observe(
          { source: followed.label },
          Math.max(0, publishedAt - row.created_at.getTime()) / 1000,
        );
      }
    }
    return true;
  }

  const loop = startLoop({
    name: 'outbox-relay',
    logger,
    idleMs: options.idleMs ?? 20,
    minIntervalMs: options.minIntervalMs ?? 10,
    iterate: async () => {
      if (!lease || lease.lost) {
        lease = await db.tryLease(RELAY_LEASE_KEY);
        held.clear();
        published.length = 0;
        events.checkpoint = null;
        outbox.checkpoint = null;
        stats.leader = lease !== null;
        metrics?.relayLeader.set(stats.leader ? 1 : 0);
        if (!lease) return 'idle';
        logger?.info('outbox relay: this instance relays');
      }
      if (!bus.connected) return 'idle';
      const [a, b] = [await relay(events), await relay(outbox)];
      stats.eventsCheckpoint = events.checkpoint ?? 0;
      stats.outboxCheckpoint = outbox.checkpoint ?? 0;
      await prune();
      return a || b ? 'busy' : 'idle';
    },
  });

  return {
    poke: () => loop.poke(),
    appended(appended) {
      // Only the relaying instance keeps them (the others would only evict them).
      if (lease && !lease.lost) {
        for (const event of appended) held.set(event.position, event);
        for (const position of held.keys()) {
          if (held.size <= HELD_MAX) break;
          held.delete(position);
        }
      }
      loop.poke();
    },
    async stop() {
      await loop.stop();
      if (lease && !lease.lost) {
        for (const followed of [events, outbox] as Followed<{ position: number }>[]) {
          await persist(followed, true).catch((error: unknown) =>
            logger?.warn({ err: error, checkpoint: followed.name }, 'outbox relay: checkpoint not saved'),
          );
        }
      }
      await lease?.release();
      stats.leader = false;
      metrics?.relayLeader.set(0);
    },
    stats: () => ({ ...stats }),
  };
}
