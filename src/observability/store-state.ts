/**
 * The gauges that describe the database's state (log heads, follower lags, pending work), read in
 * one statement when `/metrics` is scraped: never on a timer, once per scrape (concurrent scrapes
 * share one read), bounded by a statement timeout and by a wait for the answer. Every count is of a
 * narrow table or of a partial index: the processing queue, the dead letters, the pending
 * deliveries, the unfinished replays.
 *
 * Lags are measured against checkpoints the followers persist (the relay at most every 200 ms), so
 * they are right on any instance, whichever one relays, and a little pessimistic.
 */
import { FANOUT_CHECKPOINT } from '../delivery/fanout.js';
import { RELAY_CHECKPOINTS } from '../bus/outbox.js';
import type { Db } from '../store/db.js';
import { Follower, type Metrics } from './metrics.js';

export interface StoreState {
  events_head: number;
  outbox_head: number;
  relay_events: number | null;
  relay_outbox: number | null;
  fanout: number | null;
  projections: number | null;
  processing_queue: number;
  processing_dead: number;
  deliveries_pending: number;
  ingest_dead_letters: number;
  replays_queued: number;
  replays_running: number;
}

const STATE_SQL = `
SELECT
  (SELECT coalesce(max(position), 0) FROM event.events) AS events_head,
  (SELECT coalesce(max(position), 0) FROM event.outbox) AS outbox_head,
  (SELECT position FROM event.relay_checkpoints WHERE name = $1) AS relay_events,
  (SELECT position FROM event.relay_checkpoints WHERE name = $2) AS relay_outbox,
  (SELECT position FROM event.relay_checkpoints WHERE name = $3) AS fanout,
  (SELECT min(checkpoint) FROM event.projection_definitions) AS projections,
  (SELECT count(*) FROM event.processing_queue) AS processing_queue,
  (SELECT count(*) FROM event.failed_events) AS processing_dead,
  (SELECT count(*) FROM event.webhook_deliveries WHERE status = 'pending') AS deliveries_pending,
  (SELECT count(*) FROM event.dead_letters) AS ingest_dead_letters,
  (SELECT count(*) FROM event.replays WHERE status = 'queued') AS replays_queued,
  (SELECT count(*) FROM event.replays WHERE status = 'running') AS replays_running`;

/** Reads the state in one statement, within `timeoutMs` of statement time. */
export async function readStoreState(db: Db, timeoutMs: number): Promise<StoreState> {
  return db.transaction(async (tx) => {
    await tx.query("SELECT set_config('statement_timeout', $1, true)", [`${timeoutMs}ms`]);
    const result = await tx.query<StoreState>(STATE_SQL, [
      RELAY_CHECKPOINTS.events,
      RELAY_CHECKPOINTS.outbox,
      FANOUT_CHECKPOINT,
    ]);
    return result.rows[0]!;
  });
}

/** Sets the gauges from a state read. Pure apart from the gauges. */
export function applyStoreState(metrics: Metrics, state: StoreState): void {
  metrics.logHead.set({ log: 'events' }, state.events_head);
  metrics.logHead.set({ log: 'outbox' }, state.outbox_head);
  const lag = (head: number, checkpoint: number | null) => Math.max(0, head - (checkpoint ?? 0));
  metrics.followerLag.set({ follower: Follower.RELAY_EVENTS }, lag(state.events_head, state.relay_events));
  metrics.followerLag.set({ follower: Follower.RELAY_OUTBOX }, lag(state.outbox_head, state.relay_outbox));
  metrics.followerLag.set({ follower: Follower.DELIVERY_FANOUT }, lag(state.events_head, state.fanout));
  // No definition: nothing follows, nothing lags.
  metrics.followerLag.set(
    { follower: Follower.PROJECTIONS },
    state.projections === null ? 0 : lag(state.events_head, state.projections),
  );
  metrics.processingQueue.set(state.processing_queue);
  metrics.processingDeadLetters.set(state.processing_dead);
  metrics.deliveriesPending.set(state.deliveries_pending);
  metrics.ingestDeadLetters.set(state.ingest_dead_letters);
  metrics.replaysActive.set({ status: 'queued' }, state.replays_queued);
  metrics.replaysActive.set({ status: 'running' }, state.replays_running);
}

export interface StoreStateCollector {
  /** Reads the state and sets the gauges; never throws (a failure sets `event_service_store_state_up` 0). */
  collect(): Promise<void>;
}

export function createStoreStateCollector(deps: {
  db: Db;
  metrics: Metrics;
  /** Statement timeout of the read, and how long a scrape waits for it, ms. */
  timeoutMs: number;
  onError?: (error: unknown) => void;
}): StoreStateCollector {
  const { db, metrics, timeoutMs } = deps;
  let inFlight: Promise<void> | null = null;

  async function collectOnce(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`database state not read within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    const read = readStoreState(db, timeoutMs);
    try {
      applyStoreState(metrics, await Promise.race([read, late]));
      metrics.storeStateUp.set(1);
    } catch (error) {
      // A read that lost the race still ends (its statement timeout bounds it): not left unhandled.
      read.catch(() => undefined);
      metrics.storeStateUp.set(0);
      deps.onError?.(error);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    collect() {
      inFlight ??= collectOnce().finally(() => (inFlight = null));
      return inFlight;
    },
  };
}
