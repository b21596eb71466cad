/**
 * The fan-out: follows the event log gap-free (store/follower.ts) from the persisted checkpoint
 * `delivery-fanout`, matches each event against the enabled subscriptions and inserts one delivery
 * per (subscription, event) that matches, in batches, moving the checkpoint in the same
 * transaction. Idempotent (unique (subscription_id, event_id)); one instance does it at a time (an
 * advisory-lock lease), another takes over from the checkpoint when it goes.
 *
 * A subscription gets only events after its `start_position` (the last position stored when it
 * was created). The events are read before the subscriptions: a subscription not yet visible then
 * was created after those events, so it does not want them. While no subscription is enabled the
 * fan-out reads no events at all: one query tells it so and gives the last position, which it
 * moves its checkpoint to (`fanoutHead`).
 */
import type { Logger } from 'pino';
import { uuidv7 } from '../domain/ids.js';
import type { Db, Lease } from '../store/db.js';
import { EVENTS_SOURCE, readNext, type FollowSource } from '../store/follower.js';
import { loadCheckpoint, saveCheckpoint } from '../store/outbox.js';
import { startLoop, type Loop } from '../workers/loop.js';
import { matchesSubscription, type MatchableEvent } from './matching.js';
import { enabledSubscriptions, fanoutHead, insertDeliveries, type NewDelivery } from './store.js';

/** Arbitrary constant: "event-service delivery fan-out". */
export const FANOUT_LEASE_KEY = 7_235_180_060;
export const FANOUT_CHECKPOINT = 'delivery-fanout';

/** The events table, only the columns matching needs. */
const FANOUT_SOURCE: FollowSource = {
  ...EVENTS_SOURCE,
  columns: 'position, event_id, event_type, event_source, event_category',
};

interface FanoutEvent extends MatchableEvent {
  position: number;
  event_id: string;
}

export interface FanoutOptions {
  db: Db;
  logger?: Logger;
  pollMs: number;
  batchSize?: number;
  /** How often an instance that is not fanning out tries to take over, ms. */
  leaseRetryMs?: number;
  /** Called after deliveries were inserted (wakes the local engine). */
  onDeliveries?: () => void;
}

export interface FanoutStats {
  leader: boolean;
  checkpoint: number;
  deliveriesCreated: number;
}

export interface Fanout extends Loop {
  stats(): FanoutStats;
}

const CHECKPOINT_EVERY_MS = 200;

export function startFanout(options: FanoutOptions): Fanout {
  const { db, logger } = options;
  const batchSize = options.batchSize ?? 1000;
  let lease: Lease | null = null;
  let checkpoint: number | null = null;
  let saved = { position: 0, at: 0 };
  let lastLeaseTry = 0;
  // A poke while an iteration runs would be lost (the loop only wakes a pause): remember it.
  let poked = false;
  const stats: FanoutStats = { leader: false, checkpoint: 0, deliveriesCreated: 0 };

  /** The last step found no enabled subscription: the next looks before it reads events. */
  let unsubscribed = false;

  async function saveNowAndThen(position: number, force: boolean): Promise<void> {
    if (saved.position === position || (!force && Date.now() - saved.at < CHECKPOINT_EVERY_MS)) return;
    await saveCheckpoint(db, FANOUT_CHECKPOINT, position);
    saved = { position, at: Date.now() };
  }

  async function step(): Promise<boolean> {
    if (checkpoint === null) {
      checkpoint = await loadCheckpoint(db, FANOUT_CHECKPOINT);
      saved = { position: checkpoint, at: Date.now() };
    }
    if (unsubscribed) {
      // Nothing can match: move past the new events without reading them (one cheap query
      // instead of reading every event and the subscriptions).
      const { subscribed, head } = await fanoutHead(db);
      if (!subscribed) {
        if (head > checkpoint) checkpoint = stats.checkpoint = head;
        await saveNowAndThen(checkpoint, false);
        return false;
      }
      unsubscribed = false;
    }
    const batch = await readNext<FanoutEvent>(db, checkpoint, batchSize, FANOUT_SOURCE);
    if (batch.events.length === 0) {
      await saveNowAndThen(checkpoint, true);
      return false;
    }
    const subscriptions = await enabledSubscriptions(db);
    unsubscribed = subscriptions.length === 0;
    const deliveries: NewDelivery[] = [];
    for (const event of batch.events) {
      for (const subscription of subscriptions) {
        if (event.position <= subscription.start_position) continue;
        if (!matchesSubscription(subscription, event)) continue;
        deliveries.push({
          delivery_id: `dlv_${uuidv7()}`,
          subscription_id: subscription.subscription_id,
          event_id: event.event_id,
          event_position: event.position,
        });
      }
    }
    let created = 0;
    if (deliveries.length > 0) {
      created = await db.transaction(async (tx) => {
        const inserted = await insertDeliveries(tx, deliveries);
        await saveCheckpoint(tx, FANOUT_CHECKPOINT, batch.checkpoint);
        return inserted;
      });
      saved = { position: batch.checkpoint, at: Date.now() };
    } else {
      // Nothing to deliver: the checkpoint only spares a restart some reading, so it is written
      // now and then, not for every batch (events read again create nothing: deliveries are
      // unique per subscription and event, and subscriptions start after their creation).
      await saveNowAndThen(batch.checkpoint, false);
    }
    checkpoint = batch.checkpoint;
    stats.checkpoint = checkpoint;
    stats.deliveriesCreated += created;
    if (created > 0) options.onDeliveries?.();
    return true;
  }

  const loop = startLoop({
    name: 'delivery-fanout',
    logger,
    idleMs: options.pollMs,
    minIntervalMs: 10,
    iterate: async () => {
      poked = false;
      if (!lease || lease.lost) {
        // Each try opens a connection: the instances standing by try now and then, not every poll.
        if (Date.now() - lastLeaseTry < (options.leaseRetryMs ?? 1000)) return 'idle';
        lastLeaseTry = Date.now();
        lease = await db.tryLease(FANOUT_LEASE_KEY);
        checkpoint = null;
        stats.leader = lease !== null;
        if (!lease) return 'idle';
        logger?.info('delivery fan-out: this instance fans out');
      }
      return (await step()) || poked ? 'busy' : 'idle';
    },
  });

  return {
    poke() {
      poked = true;
      loop.poke();
    },
    async stop() {
      await loop.stop();
      await lease?.release();
      lease = null;
      stats.leader = false;
    },
    stats: () => ({ ...stats }),
  };
}
