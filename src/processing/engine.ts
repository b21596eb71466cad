/**
 * The processing engine: a background loop that claims due events in batches (leased, `FOR UPDATE
 * SKIP LOCKED`, so instances share the work and a crashed instance's claims expire), runs the
 * matching enabled processors of each event in priority order, and writes the batch's outcome in
 * one transaction (store/processing.ts). Events no processor matches are processed in the same
 * pass. Failures retry with backoff (retry.ts) and end as dead letters.
 *
 * Bounds: `batchSize` events a claim, `concurrency` events in flight, every run limited by its
 * timeout, itself at most what a claim leaves (`maxRunMs`). A run that could no longer finish
 * before the claim's deadline (lease less a margin) is not started, and a run cut by `stop()` does
 * not count: their events go back to the queue without a failure.
 *
 * At-least-once: a processor that succeeded is recorded with the batch; if the instance dies
 * before that, the event is claimed again after the lease and the processor runs again. A success
 * already recorded is never run again for the same event (`skipped`).
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { LifecycleSubject, outboxMessage } from '../bus/envelope.js';
import { EventStatus } from '../domain/event.js';
import type { Metrics } from '../observability/metrics.js';
import type { Db } from '../store/db.js';
import type { OutboxMessage } from '../store/outbox.js';
import {
  claimEvents,
  completeEvents,
  loadEnabledProcessors,
  loadSucceeded,
  processUnmatchedEvents,
  releaseEvents,
  succeededKey,
  type ClaimedEvent,
  type EventCompletion,
  type ProcessorRow,
  type ProcessorTally,
  type ResultRecord,
} from '../store/processing.js';
import { startLoop, type Loop } from '../workers/loop.js';
import { selectProcessors, type ProcessorFilters } from './filters.js';
import { createRunner, type Run as RunnerRun } from './runner.js';
import {
  decideEvent,
  resultStatus,
  type EventDecision,
  type NamedOutcome,
  type RetryPolicy,
} from './retry.js';
import type { ProcessorTypeSet } from './types/index.js';

export interface EngineOptions {
  db: Db;
  types: ProcessorTypeSet;
  logger?: Logger;
  now?: () => Date;
  /** Idle poll interval, ms (work stored by other instances is found this often). */
  pollMs: number;
  /** Claim duration, ms. */
  leaseMs: number;
  batchSize: number;
  /** Events of one batch in flight at once. */
  concurrency: number;
  /** Batches in flight at once (each claimed, run and written on its own); default 1. */
  parallelBatches?: number;
  /** Time limit of a run whose config has no `timeout_ms`, ms. */
  defaultTimeoutMs: number;
  retry: RetryPolicy;
  /** In [0, 1); jitter of the retry delays. */
  random?: () => number;
  /** Runs by processor type and outcome, events by outcome (`event_service_processor_*`, `_processing_*`). */
  metrics?: Metrics;
}

export interface EngineStats {
  batches: number;
  claimed: number;
  processed: number;
  retried: number;
  failed: number;
  released: number;
  /** Events whose claim expired before their batch was written (another run took them). */
  lost: number;
}

export interface ProcessingEngine extends Loop {
  stats(): EngineStats;
}

/** A registered processor as the engine uses it. */
type ActiveProcessor = Omit<ProcessorRow, 'filters'> & { filters: ProcessorFilters };

type Run = RunnerRun<ActiveProcessor>;

/** Time kept between the end of the runs and the end of the lease, for writing the outcome. */
export function leaseMargin(leaseMs: number): number {
  return Math.min(5000, Math.floor(leaseMs / 4));
}

/**
 * Longest run: a fresh claim's deadline less one more margin, for the claim itself and for the
 * runs of the batch to start.
 */
export function maxRunMs(leaseMs: number): number {
  return Math.max(1, leaseMs - 2 * leaseMargin(leaseMs));
}

export function startProcessingEngine(options: EngineOptions): ProcessingEngine {
  const { db, types, logger, metrics } = options;
  const random = options.random ?? Math.random;
  const stats: EngineStats = {
    batches: 0,
    claimed: 0,
    processed: 0,
    retried: 0,
    failed: 0,
    released: 0,
    lost: 0,
  };
  /** Aborted by stop(): runs in flight end as deferred. */
  const stopping = new AbortController();
  // Every run in flight listens to it.
  setMaxListeners(0, stopping.signal);
  /** When this instance last wrote each processor's `last_processed_at`. */
  const stamped = new Map<string, number>();

  /**
   * The registry counters to write with this batch: always a processor's errors; its
   * `last_processed_at` at most once a second, so that concurrent batches do not queue on the
   * processor's row.
   */
  function dueTallies(all: ProcessorTally[]): ProcessorTally[] {
    const now = Date.now();
    return all.filter((tally) => {
      if (tally.errors === 0 && now - (stamped.get(tally.processor_id) ?? 0) < 1000) return false;
      stamped.set(tally.processor_id, now);
      return true;
    });
  }

  // Runs (runner.ts) never outlive the claim: a timeout is at most what a fresh claim leaves, and a
  // run that could not finish before its batch's deadline is not started.
  const runner = createRunner({
    types,
    logger,
    defaultTimeoutMs: options.defaultTimeoutMs,
    maxRunMs: maxRunMs(options.leaseMs),
    signal: stopping.signal,
  });

  /** Runs the event's processors one after the other, highest priority first. */
  function runEvent(
    event: ClaimedEvent,
    selected: ActiveProcessor[],
    succeeded: Set<string>,
    deadline: number,
  ): Promise<Run[]> {
    return runner.runEvent(event, selected, deadline, (processor) =>
      succeeded.has(succeededKey(event.event_id, processor.processor_id))
        ? 'already succeeded on an earlier attempt'
        : null,
    );
  }

  function complete(token: string, event: ClaimedEvent, runs: Run[], time: Date): EventCompletion {
    const named: NamedOutcome[] = runs.map((run) => ({
      processorName: run.processor.processor_name,
      outcome: run.outcome,
    }));
    const decision = decideEvent(named, event.retry_count, options.retry, random());
    const processors = [...event.processors];
    for (const run of runs) {
      if (
        (run.outcome.type === 'success' || run.outcome.type === 'skipped') &&
        !processors.includes(run.processor.processor_name)
      ) {
        processors.push(run.processor.processor_name);
      }
    }
    const attempt = event.retry_count + 1;
    const results: ResultRecord[] = runs.flatMap((run) => {
      const status = resultStatus(run.outcome, decision);
      if (status === null) return [];
      return [
        {
          event_id: event.event_id,
          processor_id: run.processor.processor_id,
          processor_name: run.processor.processor_name,
          status,
          message: 'message' in run.outcome ? (run.outcome.message ?? null) : null,
          duration_ms: run.durationMs,
          attempt,
          finished_at: run.finishedAt,
        },
      ];
    });
    const base = {
      event,
      processors,
      results,
      message: lifecycleMessage(token, event, runs, results, decision, time),
    };
    switch (decision.type) {
      case 'processed':
        return {
          ...base,
          status: EventStatus.PROCESSED,
          error_message: null,
          retry_count: event.retry_count,
          retry_after_ms: null,
        };
      case 'retry':
        return {
          ...base,
          status: EventStatus.PENDING,
          error_message: decision.error,
          retry_count: decision.retryCount,
          retry_after_ms: decision.afterMs,
        };
      case 'dead':
        return {
          ...base,
          status: EventStatus.FAILED,
          error_message: decision.error,
          retry_count: decision.retryCount,
          retry_after_ms: null,
        };
      case 'release':
        return {
          ...base,
          status: EventStatus.PENDING,
          error_message: event.error_message,
          retry_count: event.retry_count,
          retry_after_ms: null,
        };
    }
  }

  async function iterate(): Promise<'busy' | 'idle'> {
    if (stopping.signal.aborted) return 'idle';
    const enabled = await loadEnabledProcessors(db);
    if (enabled.length === 0) {
      // Nothing to run: due events become processed in one statement.
      const done = await processUnmatchedEvents(db, options.batchSize);
      stats.processed += done;
      if (done > 0) metrics?.processingEvents.inc({ outcome: 'processed' }, done);
      return done > 0 ? 'busy' : 'idle';
    }
    const token = randomUUID();
    const startedAt = performance.now();
    const claimed = await claimEvents(db, { limit: options.batchSize, leaseMs: options.leaseMs, token });
    if (claimed.length === 0) return 'idle';
    // Read again after the claim: every processor registered before a claimed event was stored is
    // in this list; the one read before the claim may predate it.
    const current = await loadEnabledProcessors(db);
    stats.batches++;
    stats.claimed += claimed.length;
    const deadline = startedAt + options.leaseMs - leaseMargin(options.leaseMs);
    try {
      const processors: ActiveProcessor[] = current;
      const plans = claimed.map((event) => ({ event, selected: selectProcessors(processors, event) }));
      // Only events that ran before can have recorded successes.
      const ranBefore = plans
        .filter(
          ({ event, selected }) =>
            selected.length > 0 &&
            (event.previous_status === EventStatus.PROCESSING ||
              event.retry_count > 0 ||
              event.processors.length > 0 ||
              event.error_message !== null),
        )
        .map(({ event }) => event.event_id);
      const succeeded = await loadSucceeded(db, ranBefore);

      const runs = new Array<Run[]>(plans.length);
      let next = 0;
      const worker = async () => {
        while (next < plans.length) {
          const index = next++;
          const plan = plans[index]!;
          runs[index] =
            plan.selected.length === 0 ? [] : await runEvent(plan.event, plan.selected, succeeded, deadline);
        }
      };
      const busy = plans.filter((plan) => plan.selected.length > 0).length;
      await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, busy)) }, worker));

      const time = options.now?.() ?? new Date();
      const completions = plans.map((plan, index) => complete(token, plan.event, runs[index]!, time));
      const outcome = await completeEvents(db, token, completions, dueTallies(tallies(runs.flat())));
      const written = new Set(outcome.completed);
      for (const completion of completions) {
        if (!written.has(completion.event.event_id)) continue;
        const counted = completionOutcome(completion);
        stats[counted === 'dead' ? 'failed' : counted]++;
        metrics?.processingEvents.inc({ outcome: counted === 'retried' ? 'retry' : counted });
      }
      if (metrics) observeRuns(metrics, runs.flat());
      if (outcome.lost.length > 0) {
        stats.lost += outcome.lost.length;
        metrics?.processingEvents.inc({ outcome: 'lost' }, outcome.lost.length);
        logger?.warn(
          { events: outcome.lost.length, first_event_id: outcome.lost[0] },
          'processing: claims expired before the batch was written; another run took those events',
        );
      }
    } catch (error) {
      // Hand the claims back now rather than after the lease; what ran will run again.
      await releaseEvents(db, token, claimed).catch(() => undefined);
      throw error;
    }
    return 'busy';
  }

  const loops = Array.from({ length: Math.max(1, options.parallelBatches ?? 1) }, (_, index) =>
    startLoop({ name: `processing-${index}`, iterate, idleMs: options.pollMs, minIntervalMs: 10, logger }),
  );
  return {
    poke: () => loops.forEach((loop) => loop.poke()),
    async stop() {
      stopping.abort();
      await Promise.all(loops.map((loop) => loop.stop()));
    },
    stats: () => ({ ...stats }),
  };
}

/** What a written completion did to its event. */
function completionOutcome(completion: EventCompletion): 'processed' | 'dead' | 'retried' | 'released' {
  if (completion.status === EventStatus.PROCESSED) return 'processed';
  if (completion.status === EventStatus.FAILED) return 'dead';
  return completion.retry_after_ms !== null ? 'retried' : 'released';
}

function observeRuns(metrics: Metrics, runs: Run[]): void {
  for (const run of runs) {
    const labels = { processor_type: run.processor.processor_type, outcome: run.outcome.type };
    metrics.processorRuns.inc(labels);
    // Runs that did not run (skipped, deferred) have no duration worth a bucket.
    if (run.outcome.type !== 'skipped' && run.outcome.type !== 'deferred')
      metrics.processorRunDuration.observe(labels, run.durationMs / 1000);
  }
}

/** Per processor that ran: errors of this batch and the last error, for the registry's counters. */
function tallies(runs: Run[]): ProcessorTally[] {
  const byId = new Map<string, ProcessorTally>();
  for (const run of runs) {
    if (run.outcome.type === 'skipped' || run.outcome.type === 'deferred') continue;
    const tally = byId.get(run.processor.processor_id) ?? {
      processor_id: run.processor.processor_id,
      errors: 0,
      last_error: null,
    };
    if (run.outcome.type === 'retry' || run.outcome.type === 'failed') {
      tally.errors++;
      tally.last_error = run.outcome.message.slice(0, 4000);
    }
    byId.set(run.processor.processor_id, tally);
  }
  return [...byId.values()];
}

/**
 * `event.processed.success` when the event is processed, `event.processed.failed` after a failed
 * attempt (`will_retry` tells whether another follows); nothing for events no processor matched.
 */
function lifecycleMessage(
  token: string,
  event: ClaimedEvent,
  runs: Run[],
  results: ResultRecord[],
  decision: EventDecision,
  time: Date,
): OutboxMessage | null {
  if (runs.length === 0 || decision.type === 'release') return null;
  // Unique per message and fixed in its outbox row (the relay's Nats-Msg-Id).
  const id = `${token}.${event.position}`;
  const common = {
    event_id: event.event_id,
    event_type: event.event_type,
    event_source: event.event_source,
    event_category: event.event_category,
    user_id: event.user_id,
    results: results.map((r) => ({
      processor_id: r.processor_id,
      processor_name: r.processor_name,
      status: r.status,
      message: r.message,
      duration_ms: Math.round(r.duration_ms),
    })),
    duration_ms: Math.round(runs.reduce((sum, run) => sum + run.durationMs, 0)),
    timestamp: time.toISOString(),
  };
  if (decision.type === 'processed') {
    const subject = LifecycleSubject.PROCESSED_SUCCESS;
    return outboxMessage(
      id,
      subject,
      { ...common, status: EventStatus.PROCESSED, retry_count: event.retry_count },
      time,
    );
  }
  const subject = LifecycleSubject.PROCESSED_FAILED;
  const failedRun = runs.find((run) => run.outcome.type === 'retry' || run.outcome.type === 'failed');
  return outboxMessage(
    id,
    subject,
    {
      ...common,
      status: decision.type === 'dead' ? EventStatus.FAILED : EventStatus.PENDING,
      processor_name: failedRun?.processor.processor_name ?? null,
      error_message: decision.error,
      retry_count: decision.retryCount,
      will_retry: decision.type === 'retry',
      next_attempt_in_ms: decision.type === 'retry' ? decision.afterMs : null,
    },
    time,
  );
}
