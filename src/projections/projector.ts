/**
 * The projector: keeps the state rows of declared projections current, and computes them for a
 * new definition or a rebuild, with one mechanism. Each definition has a checkpoint (a position of
 * the global log) and a generation; a new definition or a rebuild starts a generation with the
 * checkpoint just before the first event of its entity type. A pass takes one batch per
 * definition: in one transaction it locks the definition's row (a rebuild or a delete waits for
 * the batch; a changed generation or checkpoint makes the batch step aside), reads the next window
 * of the log (store/projection-log.ts: gap-free, only the entity type's events), folds each
 * stream's events onto its state row (a row of an older generation counts as absent), writes the
 * rows (only forward: store/projection-states.ts) and moves the checkpoint. A crash anywhere
 * loses nothing: the transaction rolls back and the batch is done again.
 *
 * One instance projects at a time (an advisory-lock lease, as the outbox relay); the others stand
 * by, trying the lease every `leaseRetryMs`. Appends on this instance wake it (`poke`); it polls
 * every `pollMs` for what other instances appended or registered. Reads never wait for it: they
 * fold what it has not applied yet (declared.ts), so its lag costs read time, not correctness.
 */
import type { Logger } from 'pino';
import type { Db, Lease } from '../store/db.js';
import {
  advanceDefinition,
  getDefinitionById,
  headPosition,
  listDefinitionHeads,
  lockDefinition,
  type DefinitionHead,
} from '../store/projection-definitions.js';
import { readLogWindow } from '../store/projection-log.js';
import { loadStates, writeStates, type StateWrite } from '../store/projection-states.js';
import { startLoop, type Loop } from '../workers/loop.js';
import { createReducerCache, type ReducerSource } from './reducer-cache.js';
import { foldEvents, startPoint, type ProjectionEvent } from './reducer-dsl.js';

/** Arbitrary constant: "event-service projector". */
export const PROJECTOR_LEASE_KEY = 7_235_180_044;

export interface ProjectorOptions {
  db: Db;
  logger?: Logger;
  /** Positions of the log one batch covers (default 5,000). */
  batchSize?: number;
  /** How often an idle projector looks for work another instance caused, ms (default 250). */
  pollMs?: number;
  /** How often a standing-by instance tries to take over, ms (default 1,000). */
  leaseRetryMs?: number;
  /** Least time between two passes under a stream of appends, ms (default 20). */
  minIntervalMs?: number;
}

export interface ProjectorStats {
  leader: boolean;
  batches: number;
  /** Events of the definitions' entity types folded by this instance. */
  eventsApplied: number;
}

export interface Projector extends Loop {
  stats(): ProjectorStats;
}

/** Groups events by stream, each stream's in order. */
function byStream(events: readonly ProjectionEvent[]): Map<string, ProjectionEvent[]> {
  const streams = new Map<string, ProjectionEvent[]>();
  for (const event of events) {
    const list = streams.get(event.stream_id);
    if (list) list.push(event);
    else streams.set(event.stream_id, [event]);
  }
  return streams;
}

export function startProjector(options: ProjectorOptions): Projector {
  const { db, logger } = options;
  const batchSize = options.batchSize ?? 5000;
  const leaseRetryMs = options.leaseRetryMs ?? 1000;
  const reducerOf = createReducerCache();
  /** Handlers and initial states by definition id (a definition never changes). */
  const sources = new Map<string, ReducerSource>();
  const stats: ProjectorStats = { leader: false, batches: 0, eventsApplied: 0 };
  let lease: Lease | null = null;
  let leaseTriedAt = -Infinity;
  /** Consecutive failed batches by definition name (reported on the first and every 20th). */
  const failures = new Map<string, number>();

  async function sourceOf(head: DefinitionHead): Promise<ReducerSource | null> {
    let source = sources.get(head.definition_id);
    if (!source) {
      const row = await getDefinitionById(db, head.definition_id);
      if (!row) return null;
      source = { definition_id: row.definition_id, handlers: row.handlers, initial_state: row.initial_state };
      sources.set(head.definition_id, source);
    }
    return source;
  }

  /** One batch of one definition; true when it did something (or found the definition changed). */
  async function step(head: DefinitionHead): Promise<boolean> {
    const source = await sourceOf(head);
    if (!source) return true;
    const reducer = reducerOf(source);
    return db.transaction(async (tx) => {
      const locked = await lockDefinition(tx, head.definition_id);
      if (!locked || locked.generation !== head.generation || locked.checkpoint !== head.checkpoint) {
        return true; // rebuilt, deleted or advanced meanwhile: the next pass reloads it
      }
      const window = await readLogWindow(tx, head.checkpoint, head.entity_type, batchSize);
      if (window.upto === null) {
        if (head.status === 'rebuilding' && head.checkpoint >= head.rebuild_target) {
          await advanceDefinition(tx, head.definition_id, head.checkpoint, 0);
        }
        return false;
      }
      const streams = byStream(window.events);
      const rows = await loadStates(tx, head.name, [...streams.keys()]);
      const writes: StateWrite[] = [];
      for (const [streamId, events] of streams) {
        const row = rows.get(streamId);
        const from = row && row.generation === head.generation ? row : startPoint(reducer);
        const folded = foldEvents(reducer, from, events);
        if (folded.version === from.version) continue; // already in the row
        const first = events[0]!;
        writes.push({
          stream_id: streamId,
          entity_type: first.entity_type,
          entity_id: first.entity_id,
          version: folded.version,
          state: folded.state,
          last_event_id: folded.last_event_id!,
          last_event_at: folded.last_event_at!,
        });
      }
      await writeStates(tx, head.name, head.generation, writes);
      await advanceDefinition(tx, head.definition_id, window.upto, window.events.length);
      stats.batches++;
      stats.eventsApplied += window.events.length;
      return true;
    });
  }

  const loop = startLoop({
    name: 'projector',
    logger,
    idleMs: options.pollMs ?? 250,
    minIntervalMs: options.minIntervalMs ?? 20,
    iterate: async () => {
      if (!lease || lease.lost) {
        stats.leader = false;
        if (Date.now() - leaseTriedAt < leaseRetryMs) return 'idle';
        leaseTriedAt = Date.now();
        lease = await db.tryLease(PROJECTOR_LEASE_KEY);
        if (!lease) return 'idle';
        stats.leader = true;
        logger?.info('projector: this instance projects');
      }
      const heads = await listDefinitionHeads(db);
      const present = new Set(heads.map((head) => head.definition_id));
      for (const id of sources.keys()) if (!present.has(id)) sources.delete(id);
      const names = new Set(heads.map((head) => head.name));
      for (const name of failures.keys()) if (!names.has(name)) failures.delete(name);
      if (heads.length === 0) return 'idle';
      // A definition at the newest visible position has nothing to read: skipped without a
      // transaction of its own, so an idle pass costs two queries however many definitions exist.
      const newest = await headPosition(db);
      let busy = false;
      for (const head of heads) {
        const finishing = head.status === 'rebuilding' && head.checkpoint >= head.rebuild_target;
        if (head.checkpoint >= newest && !finishing) continue;
        try {
          if (await step(head)) busy = true;
          failures.delete(head.name);
        } catch (error) {
          // One definition's failure (reported, retried on the next pass) does not hold up the others.
          const count = (failures.get(head.name) ?? 0) + 1;
          failures.set(head.name, count);
          if (count === 1 || count % 20 === 0) {
            logger?.warn({ err: error, projection: head.name, failures: count }, 'projector: batch failed');
          }
        }
      }
      return busy ? 'busy' : 'idle';
    },
  });

  return {
    poke: () => loop.poke(),
    async stop() {
      await loop.stop();
      await lease?.release();
      lease = null;
      stats.leader = false;
    },
    stats: () => ({ ...stats }),
  };
}
