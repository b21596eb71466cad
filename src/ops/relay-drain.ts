/**
 * At shutdown, lets the outbox relay publish what is committed before it stops (docs/operations.md):
 * pokes it and waits until its checkpoints reach the end of the event log and of the outbox (the
 * gap-free reads of store/follower.ts), or until `until`.
 *
 * It stops waiting early when this instance does not relay (another one holds the relay lease and
 * publishes) or the bus is disconnected: what is left is then published by the next relay from the
 * saved checkpoints. Nothing committed is lost either way, only published later.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Bus } from '../bus/bus.js';
import type { Relay } from '../bus/outbox.js';
import type { Queryable } from '../store/db.js';
import { EVENTS_SOURCE, OUTBOX_SOURCE, readNextPositions } from '../store/follower.js';

export type RelayDrainOutcome =
  | { type: 'published' }
  | { type: 'not_relaying' }
  | { type: 'bus_disconnected' }
  | { type: 'out_of_time'; eventsCheckpoint: number; outboxCheckpoint: number };

export interface RelayDrainOptions {
  relay: Relay;
  db: Queryable;
  bus: Bus;
  /** `Date.now()` time after which it stops waiting. */
  until: number;
  /** How often the relay's progress is looked at, ms. Default 20. */
  pollMs?: number;
}

export async function drainRelay(options: RelayDrainOptions): Promise<RelayDrainOutcome> {
  const { relay, db, bus } = options;
  const pollMs = options.pollMs ?? 20;
  // The checkpoints last found behind: the database is asked again only once they moved.
  let behind: { events: number; outbox: number } | null = null;
  for (;;) {
    const stats = relay.stats();
    if (!stats.leader) return { type: 'not_relaying' };
    if (!bus.connected) return { type: 'bus_disconnected' };
    if (
      behind === null ||
      behind.events !== stats.eventsCheckpoint ||
      behind.outbox !== stats.outboxCheckpoint
    ) {
      const [events, outbox] = await Promise.all([
        readNextPositions(db, stats.eventsCheckpoint, 1, EVENTS_SOURCE),
        readNextPositions(db, stats.outboxCheckpoint, 1, OUTBOX_SOURCE),
      ]);
      if (events.length === 0 && outbox.length === 0) return { type: 'published' };
      behind = { events: stats.eventsCheckpoint, outbox: stats.outboxCheckpoint };
    }
    if (Date.now() >= options.until) {
      return {
        type: 'out_of_time',
        eventsCheckpoint: stats.eventsCheckpoint,
        outboxCheckpoint: stats.outboxCheckpoint,
      };
    }
    relay.poke();
    await sleep(Math.max(1, Math.min(pollMs, options.until - Date.now())));
  }
}
