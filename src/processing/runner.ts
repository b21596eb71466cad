/**
 * Runs processors on one event: the part of processing that both the engine (engine.ts) and replay
 * (src/replay/worker.ts, `reprocess: true`) use, so that a processor behaves the same whoever runs
 * it. Per run: the time limit (the processor's `timeout_ms` or the default, capped at `maxRunMs`),
 * a deadline after which a run is not started, an abort signal the type sees, and the mapping of
 * what the type returned or threw to a `RunOutcome` (retry.ts). Recording the runs is the caller's.
 *
 * A run cut short by `signal` (the caller is stopping) is `deferred`: it does not count as a
 * failure, and the caller hands its event back.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { StoredEvent } from '../domain/event.js';
import type { ClaimedEvent } from '../store/processing.js';
import { PermanentProcessorError, type ProcessorResult } from './processor-type.js';
import type { RunOutcome } from './retry.js';
import type { ProcessorTypeSet } from './types/index.js';

/** What the runner needs of a registered processor. */
export interface RunnableProcessor {
  processor_id: string;
  processor_name: string;
  processor_type: string;
  config: Record<string, unknown>;
}

export interface Run<P extends RunnableProcessor = RunnableProcessor> {
  processor: P;
  outcome: RunOutcome;
  durationMs: number;
  finishedAt: Date;
}

export interface RunnerOptions {
  types: ProcessorTypeSet;
  logger?: Logger;
  /** Time limit of a run whose config has no `timeout_ms`, ms. */
  defaultTimeoutMs: number;
  /** Longest any run may take, whatever its config says, ms. */
  maxRunMs: number;
  /** Aborted when the caller stops: runs in flight end as `deferred`, none start. */
  signal: AbortSignal;
  /** The replay job running the processors again (`RunContext.replayId`). */
  replayId?: string;
}

export interface Runner {
  /**
   * Runs one processor; never throws. A run whose time limit would end after `deadline`
   * (`performance.now()` time) is not started (`deferred`).
   */
  runOne<P extends RunnableProcessor>(event: StoredEvent, processor: P, deadline: number): Promise<Run<P>>;
  /**
   * Runs the processors one after the other, in the order given. `skip` may name a reason not to
   * run one (it is recorded as `skipped` without running).
   */
  runEvent<P extends RunnableProcessor>(
    event: StoredEvent,
    processors: readonly P[],
    deadline: number,
    skip?: (processor: P) => string | null,
  ): Promise<Run<P>[]>;
}

/** The event as JSON text: a claimed event's own (built by the database), else serialized here. */
function jsonOf(event: StoredEvent): string {
  const own = (event as Partial<Pick<ClaimedEvent, 'json'>>).json;
  return typeof own === 'string' ? own : JSON.stringify(event);
}

export function createRunner(options: RunnerOptions): Runner {
  const { types, logger, signal: stopping } = options;
  /** Ends the runs in flight when the caller stops: one listener for all of them. */
  const onStop = new Set<() => void>();
  stopping.addEventListener('abort', () => onStop.forEach((end) => end()), { once: true });

  async function runOne<P extends RunnableProcessor>(
    event: StoredEvent,
    processor: P,
    deadline: number,
  ): Promise<Run<P>> {
    const started = performance.now();
    const finish = (outcome: RunOutcome): Run<P> => ({
      processor,
      outcome,
      durationMs: performance.now() - started,
      finishedAt: new Date(),
    });
    if (stopping.aborted) return finish({ type: 'deferred' });
    const type = types.get(processor.processor_type);
    if (!type) {
      return finish({
        type: 'retry',
        message: `processor type ${processor.processor_type} is not known to this instance`,
      });
    }
    // A run that could not finish before the deadline is not started (deferred to a later claim,
    // where it comes first). The first runs of every batch always start: progress.
    const configured = processor.config.timeout_ms;
    const timeoutMs = Math.max(
      1,
      Math.min(
        typeof configured === 'number' && configured > 0 ? configured : options.defaultTimeoutMs,
        options.maxRunMs,
      ),
    );
    if (deadline - started < timeoutMs) return finish({ type: 'deferred' });
    // The run's signal is made when the type asks for it: most built-in runs never do, and an
    // AbortController with its listeners per run was a measurable share of processing.
    let controller: AbortController | undefined;
    let ended = false;
    let end!: () => void;
    const timedOut = new Promise<'timeout'>((resolve) => {
      end = () => {
        ended = true;
        controller?.abort();
        resolve('timeout');
      };
    });
    const timer = setTimeout(end, timeoutMs);
    onStop.add(end);
    try {
      // A custom type's run may throw synchronously or return a plain value.
      let runLogger: Logger | undefined;
      let json: string | undefined;
      const context = {
        processor: {
          processor_id: processor.processor_id,
          processor_name: processor.processor_name,
          processor_type: processor.processor_type,
        },
        get signal() {
          if (!controller) {
            controller = new AbortController();
            if (ended) controller.abort();
          }
          return controller.signal;
        },
        timeoutMs,
        replayId: options.replayId,
        eventJson: () => (json ??= jsonOf(event)),
        // Made when a type asks for it: most runs log nothing, and a child logger per run was a
        // measurable share of processing at 10,000 events/s.
        get logger() {
          return (runLogger ??= logger?.child({
            event_id: event.event_id,
            processor_name: processor.processor_name,
          }));
        },
      };
      const running = Promise.resolve().then(() => type.run(event, processor.config, context));
      running.catch(() => undefined);
      const result = await Promise.race([running, timedOut]);
      if (result === 'timeout') {
        if (stopping.aborted) return finish({ type: 'deferred' });
        return finish({ type: 'retry', message: `timed out after ${timeoutMs} ms` });
      }
      return finish(toOutcome(result));
    } catch (error) {
      if (stopping.aborted) return finish({ type: 'deferred' });
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof PermanentProcessorError) return finish({ type: 'failed', message });
      return finish({ type: 'retry', message: message || 'failed' });
    } finally {
      clearTimeout(timer);
      onStop.delete(end);
    }
  }

  async function runEvent<P extends RunnableProcessor>(
    event: StoredEvent,
    processors: readonly P[],
    deadline: number,
    skip?: (processor: P) => string | null,
  ): Promise<Run<P>[]> {
    const runs: Run<P>[] = [];
    for (const processor of processors) {
      const reason = skip?.(processor) ?? null;
      if (reason !== null) {
        runs.push({
          processor,
          outcome: { type: 'skipped', message: reason },
          durationMs: 0,
          finishedAt: new Date(),
        });
        continue;
      }
      runs.push(await runOne(event, processor, deadline));
    }
    return runs;
  }

  return { runOne, runEvent };
}

export function toOutcome(result: ProcessorResult | void): RunOutcome {
  if (result === undefined || result === null) return { type: 'success' };
  switch (result.type) {
    case 'success':
      return { type: 'success', message: result.message };
    case 'retry':
      return { type: 'retry', message: result.message };
    case 'failed':
      return { type: 'failed', message: result.message };
    default:
      return { type: 'retry', message: `processor returned an unknown result ${JSON.stringify(result)}` };
  }
}
