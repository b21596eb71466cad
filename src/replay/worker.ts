/**
 * The replay worker: background loops (one per job worked on at once, `REPLAY_CONCURRENCY`) that
 * claim a replay job under a lease and take it through its selection page by page, in position
 * order, each page in four steps:
 *
 * 1. renew the lease and read the job's status (a cancelled job stops here, before publishing);
 * 2. read the next page (`REPLAY_PAGE_SIZE` events at most: memory is bounded by two pages whatever
 *    the size of the replay). Without `reprocess` the database writes each event's JSON (nothing
 *    to parse and serialize again here) and reads the following page while this one is published;
 * 3. with `reprocess`, run the enabled processors matching each event (runner.ts, selected and
 *    ordered as the engine does); then publish every event of the page to
 *    `event.replayed.{target}`, pipelined, acknowledged together (messages.ts: `Nats-Msg-Id` =
 *    `{replay_id}:{event_id}`);
 * 4. commit the page in one transaction: cursor, counts, processing results, lease; the last page
 *    also completes the job and enqueues `event.replay.completed`.
 *
 * A crash between 3 and 4 publishes the page again from the cursor: JetStream drops the repeats
 * within its duplicate window (the lease, after which another instance resumes, is shorter than
 * it: config.ts), so each event is in the stream once per replay. When a publish fails, what the
 * stream acknowledged in order is committed before the page is tried again, so a long outage does
 * not leave a published stretch to repeat after the window. The lease is renewed while a page
 * runs; an instance that finds its lease taken over drops the job without writing.
 *
 * Failures: while the bus is down the job waits (nothing counts as failed); an unreachable store or
 * a failed publish is retried with backoff for as long as it lasts, its message kept in the job's
 * `error`; any other error fails the job after MAX_ATTEMPTS attempts of the same page. With
 * `reprocess`, a processor that fails (or times out) fails its event: the event is counted in
 * `failed` and its result recorded as `failed` with the message; it is not retried (a replay by its
 * id runs it again). Processor runs are at-least-once: a page cut by a crash or a stop runs again.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import { BusUnavailableError, type Bus } from '../bus/bus.js';
import type { StoredEvent } from '../domain/event.js';
import { selectProcessors, type ProcessorFilters } from '../processing/filters.js';
import { createRunner, type Run } from '../processing/runner.js';
import type { ProcessorTypeSet } from '../processing/types/index.js';
import { isUnavailable, RETRYABLE_SQLSTATES, sqlState, type Db } from '../store/db.js';
import { loadEnabledProcessors, type ProcessorRow } from '../store/processing.js';
import {
  claimReplay,
  commitReplayPage,
  failReplay,
  pageKey,
  readReplayPage,
  readReplayPageJson,
  releaseReplay,
  renewReplay,
  ReplayStatus,
  type EventJsonRow,
  type PageRequest,
  type ReplayResultRecord,
  type ReplayRow,
} from '../store/replay.js';
import { startLoop } from '../workers/loop.js';
import {
  completedMessage,
  replayedMessage,
  replayedMessageFromJson,
  type PublishedMessage,
} from './messages.js';
import { initialWindow, nextWindow, pageCursor } from './paging.js';

/** Attempts of one page before a job fails on an error that is not an outage. */
export const MAX_ATTEMPTS = 5;

const BUS_DOWN = 'waiting for the bus: it is not connected';

export interface ReplayWorkerOptions {
  db: Db;
  bus: Bus;
  types: ProcessorTypeSet;
  logger?: Logger;
  now?: () => Date;
  /** Most events a page reads, publishes and commits. */
  pageSize: number;
  /** How long a claim on a job lasts without renewal, ms. */
  leaseMs: number;
  /** How often an idle worker looks for jobs, ms. */
  pollMs: number;
  /** Jobs this instance works on at once. */
  concurrency: number;
  /** With `reprocess`: events of a page whose processors run at once. */
  reprocessConcurrency: number;
  /** Time limit of a processor run whose config has no `timeout_ms`, ms. */
  defaultTimeoutMs: number;
  /** Longest processor run, ms (the engine's cap). */
  maxRunMs: number;
}

export interface ReplayWorkerStats {
  pages: number;
  replayed: number;
  failed: number;
  /** Jobs this instance ended (completed or failed) or saw cancelled. */
  finished: number;
}

export interface ReplayWorker {
  stop(): Promise<void>;
  stats(): ReplayWorkerStats;
}

type ActiveProcessor = Omit<ProcessorRow, 'filters'> & { filters: ProcessorFilters };

interface Held {
  job: ReplayRow;
  /** The lease owner: one per loop, so that two loops of an instance never share a job. */
  owner: string;
  /** Every selected event at or below it is done (committed). */
  cursor: number;
  /** Positions the next page may read (position-keyed selections). */
  window: number;
  /** Failed attempts of the current page in a row. */
  failures: number;
  /** Waiting for the bus to come back (noted in the job's `error`). */
  waiting: boolean;
  /** The next page, read while the current one is published (without reprocess). */
  prefetch: { request: PageRequest; rows: Promise<EventJsonRow[]> } | null;
}

/** The page after `cursor`: within the window for a position-keyed selection, else to the end. */
function pageRequest(job: ReplayRow, cursor: number, window: number, pageSize: number): PageRequest {
  const byPosition = pageKey(job.selection) === 'position';
  return {
    after: cursor,
    upTo: byPosition ? Math.min(job.last_position, cursor + window) : job.last_position,
    limit: pageSize,
  };
}

const sameRequest = (a: PageRequest, b: PageRequest) =>
  a.after === b.after && a.upTo === b.upTo && a.limit === b.limit;

/** A page cut short because the worker stops or lost its lease: nothing of it is written. */
class PageAbandoned extends Error {}

export function startReplayWorker(options: ReplayWorkerOptions): ReplayWorker {
  const { db, bus, logger } = options;
  const now = options.now ?? (() => new Date());
  const stopping = new AbortController();
  const stats: ReplayWorkerStats = { pages: 0, replayed: 0, failed: 0, finished: 0 };
  const announce = (job: ReplayRow) => completedMessage(job, now());

  /**
   * Publishes the page, pipelined, acknowledged together: how many events from the start of the
   * page the stream has acknowledged, and the first failure after them, if any.
   */
  async function publish(
    messages: readonly PublishedMessage[],
  ): Promise<{ acknowledged: number; error?: Error }> {
    const settled = await Promise.allSettled(
      messages.map((message) => bus.publish(message.subject, message.data, { msgId: message.msgId })),
    );
    const first = settled.findIndex((s) => s.status === 'rejected');
    if (first < 0) return { acknowledged: messages.length };
    const reason: unknown = (settled[first] as PromiseRejectedResult).reason;
    return { acknowledged: first, error: reason instanceof Error ? reason : new Error(String(reason)) };
  }

  /**
   * Runs the matching enabled processors of every event (as the engine selects and orders them):
   * per event, whether one failed and the results to record.
   */
  async function reprocess(
    replayId: string,
    events: readonly StoredEvent[],
    signal: AbortSignal,
  ): Promise<{ failed: boolean; results: ReplayResultRecord[] }[]> {
    const processors: ActiveProcessor[] = await loadEnabledProcessors(db);
    const runner = createRunner({
      types: options.types,
      logger,
      defaultTimeoutMs: options.defaultTimeoutMs,
      maxRunMs: options.maxRunMs,
      signal,
      replayId,
    });
    const runs = new Array<Run<ActiveProcessor>[]>(events.length);
    let next = 0;
    const worker = async () => {
      while (next < events.length) {
        const index = next++;
        const event = events[index]!;
        runs[index] = await runner.runEvent(event, selectProcessors(processors, event), Infinity);
      }
    };
    await Promise.all(
      Array.from({ length: Math.max(1, Math.min(options.reprocessConcurrency, events.length)) }, worker),
    );
    return runs.map((eventRuns, index) => {
      let failed = false;
      const results = eventRuns.map((run): ReplayResultRecord => {
        const { outcome } = run;
        if (outcome.type === 'deferred') throw new PageAbandoned('processor runs were cut short');
        const success = outcome.type === 'success' || outcome.type === 'skipped';
        if (!success) failed = true;
        return {
          event_id: events[index]!.event_id,
          processor_id: run.processor.processor_id,
          processor_name: run.processor.processor_name,
          status: success ? 'success' : 'failed',
          message: 'message' in outcome ? (outcome.message ?? null) : null,
          duration_ms: run.durationMs,
          finished_at: run.finishedAt,
        };
      });
      return { failed, results };
    });
  }

  /** Keeps the lease while a page runs; aborts the page when another instance took the job over. */
  function heartbeat(held: Held, page: AbortController): () => void {
    const timer = setInterval(
      () => {
        renewReplay(db, held.job.replay_id, held.owner, options.leaseMs)
          .then((status) => {
            if (status === null) page.abort();
          })
          .catch((error: unknown) =>
            logger?.warn({ err: error, replay_id: held.job.replay_id }, 'replay: lease renewal failed'),
          );
      },
      Math.max(50, Math.floor(options.leaseMs / 3)),
    );
    return () => clearInterval(timer);
  }

  /** One page of the held job: `dropped` when the job is no longer held afterwards. */
  async function workPage(held: Held): Promise<'busy' | 'idle' | 'dropped'> {
    const { job, owner } = held;
    const status = await renewReplay(db, job.replay_id, owner, options.leaseMs);
    if (status !== ReplayStatus.RUNNING) {
      if (status === ReplayStatus.CANCELLED) {
        await releaseReplay(db, job.replay_id, owner);
        stats.finished++;
        logger?.info({ replay_id: job.replay_id }, 'replay cancelled');
      } else {
        logger?.warn({ replay_id: job.replay_id }, 'replay: another instance took this job over');
      }
      return 'dropped';
    }
    if (!bus.connected) {
      // The job waits; GET shows why (the next committed page clears it).
      if (!held.waiting) {
        await renewReplay(db, job.replay_id, owner, options.leaseMs, BUS_DOWN);
        held.waiting = true;
      }
      return 'idle';
    }
    held.waiting = false;

    const page = new AbortController();
    const stopHeartbeat = heartbeat(held, page);
    try {
      const byPosition = pageKey(job.selection) === 'position';
      const request = pageRequest(job, held.cursor, held.window, options.pageSize);
      const { upTo } = request;
      const prefetched = held.prefetch;
      held.prefetch = null;
      const time = now().toISOString();
      let events: readonly { position: number }[];
      let messages: PublishedMessage[];
      // Processors first, then the page is published and committed at once: a crash leaves
      // little time between a publish and its commit (the duplicate window covers it).
      let outcomes: { failed: boolean; results: ReplayResultRecord[] }[] | null = null;
      if (job.reprocess) {
        const stored = await readReplayPage(db, job.selection, request);
        if (stored.length > 0) {
          const signal = AbortSignal.any([stopping.signal, page.signal]);
          // Every run in flight listens to it.
          setMaxListeners(0, signal);
          outcomes = await reprocess(job.replay_id, stored, signal);
        }
        events = stored;
        messages = stored.map((event) => replayedMessage(job, event, time));
      } else {
        // The events' JSON as the database writes it: the cheap way when nothing else needs them.
        const rows =
          prefetched && sameRequest(prefetched.request, request)
            ? await prefetched.rows
            : await readReplayPageJson(db, job.selection, request);
        events = rows;
        messages = rows.map((row) => replayedMessageFromJson(job, row, time));
        // The database reads the next page while this one is published and committed.
        const after = pageCursor(
          rows.map((row) => row.position),
          options.pageSize,
          upTo,
        );
        if (after < job.last_position) {
          const window = byPosition ? nextWindow(held.window, rows.length, options.pageSize) : held.window;
          const next = pageRequest(job, after, window, options.pageSize);
          const read = readReplayPageJson(db, job.selection, next);
          // Awaited (and its failure handled) only if the next page starts where this one ends.
          read.catch(() => undefined);
          held.prefetch = { request: next, rows: read };
        }
      }
      if (page.signal.aborted) throw new PageAbandoned('lease lost');
      const published = await publish(messages);
      // What the stream acknowledged in order is kept even when the rest failed: published again
      // much later (after an outage longer than the duplicate window) it would be a duplicate.
      const done = events.slice(0, published.acknowledged);
      const cursor =
        published.acknowledged === events.length
          ? pageCursor(
              events.map((event) => event.position),
              options.pageSize,
              upTo,
            )
          : (done[done.length - 1]?.position ?? held.cursor);
      const doneOutcomes = outcomes?.slice(0, done.length) ?? [];
      const failed = doneOutcomes.filter((outcome) => outcome.failed).length;
      if (cursor > held.cursor || published.error === undefined) {
        const outcome = await commitReplayPage(
          db,
          job.replay_id,
          owner,
          {
            cursor,
            replayed: done.length - failed,
            failed,
            results: doneOutcomes.flatMap((o) => o.results),
            leaseMs: options.leaseMs,
          },
          announce,
        );
        if (outcome.type === 'lost') {
          logger?.warn({ replay_id: job.replay_id }, 'replay: another instance took this job over');
          return 'dropped';
        }
        stats.pages++;
        stats.replayed += done.length - failed;
        stats.failed += failed;
        held.job = outcome.job;
        held.cursor = cursor;
        if (outcome.job.status !== ReplayStatus.RUNNING) {
          stats.finished++;
          const { replay_id, status: ended, total, replayed } = outcome.job;
          logger?.info(
            { replay_id, status: ended, total, replayed, failed: outcome.job.failed },
            `replay ${ended}`,
          );
          return 'dropped';
        }
      }
      if (published.error !== undefined) throw published.error;
      if (byPosition) held.window = nextWindow(held.window, events.length, options.pageSize);
      return 'busy';
    } finally {
      stopHeartbeat();
    }
  }

  /** Ends the job as failed after an error that is not an outage came back MAX_ATTEMPTS times. */
  async function failJob(held: Held, error: unknown): Promise<void> {
    const message = error instanceof Error ? error.message : String(error);
    const failed = await failReplay(
      db,
      held.job.replay_id,
      held.owner,
      `${message} (after ${held.failures} attempts)`,
      announce,
    );
    if (failed) {
      stats.finished++;
      logger?.error({ err: error, replay_id: held.job.replay_id }, 'replay failed');
    }
  }

  function slot(index: number): { stop(): Promise<void>; release(): Promise<void> } {
    const owner = randomUUID();
    let held: Held | null = null;
    const loop = startLoop({
      name: `replay-${index}`,
      logger,
      idleMs: options.pollMs,
      iterate: async () => {
        if (stopping.signal.aborted) return 'idle';
        if (!held) {
          const job = await claimReplay(db, owner, options.leaseMs);
          if (!job) return 'idle';
          held = {
            job,
            owner,
            cursor: job.cursor_position,
            window: initialWindow(options.pageSize),
            failures: 0,
            waiting: false,
            prefetch: null,
          };
          logger?.info(
            {
              replay_id: job.replay_id,
              total: job.total,
              replayed: job.replayed,
              cursor: job.cursor_position,
            },
            job.replayed + job.failed > 0 ? 'replay resumed' : 'replay started',
          );
        }
        const current = held;
        try {
          const result = await workPage(current);
          current.failures = 0;
          if (result === 'dropped') held = null;
          return result === 'idle' ? 'idle' : 'busy';
        } catch (error) {
          if (error instanceof PageAbandoned) {
            // Stopping, or the lease is gone: hand the job back without writing the page.
            await releaseReplay(db, current.job.replay_id, owner).catch(() => undefined);
            held = null;
            return 'idle';
          }
          current.failures++;
          if (!isOutage(error) && current.failures >= MAX_ATTEMPTS) {
            await failJob(current, error);
            held = null;
            return 'busy';
          }
          // Shown by GET while the job waits to try again; the loop reports it and backs off.
          const message = error instanceof Error ? error.message : String(error);
          await renewReplay(db, current.job.replay_id, owner, options.leaseMs, message.slice(0, 4000)).catch(
            () => undefined,
          );
          throw error;
        }
      },
    });
    return {
      stop: () => loop.stop(),
      async release() {
        if (held) await releaseReplay(db, held.job.replay_id, owner);
        held = null;
      },
    };
  }

  const slots = Array.from({ length: Math.max(1, options.concurrency) }, (_, index) => slot(index));
  return {
    async stop() {
      stopping.abort();
      await Promise.all(slots.map((s) => s.stop()));
      await Promise.all(
        slots.map((s) =>
          s
            .release()
            .catch((error: unknown) => logger?.warn({ err: error }, 'replay: could not release a job')),
        ),
      );
    },
    stats: () => ({ ...stats }),
  };
}

function isOutage(error: unknown): boolean {
  return (
    error instanceof BusUnavailableError ||
    isUnavailable(error) ||
    RETRYABLE_SQLSTATES.has(sqlState(error) ?? '')
  );
}
