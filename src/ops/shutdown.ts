/**
 * The graceful shutdown sequence (docs/operations.md): named steps run one after the other, each
 * given the deadline, the whole bounded by `timeoutMs` from the first signal.
 *
 * - Every step done: exit 0. A step that throws is logged and the next ones still run; exit 1.
 * - The deadline passes: the step in progress, what it still waits for (its `pending()`) and the
 *   steps not run are logged; exit 1.
 * - A second signal while stopping: exit at once, with 128 + the signal's number (130 for SIGINT,
 *   143 for SIGTERM), as a shell reports a process the signal ended.
 */
import { constants } from 'node:os';
import type { Logger } from 'pino';

export interface ShutdownStep {
  name: string;
  /** `deadline` is the `Date.now()` time by which the whole shutdown must be over. */
  run(deadline: number): Promise<void> | void;
  /** What the step still waits for, logged when the deadline passes during it. */
  pending?(): Record<string, unknown>;
}

export interface ShutdownOptions {
  steps: readonly ShutdownStep[];
  timeoutMs: number;
  logger: Logger;
  /** Ends the process (`process.exit`); called exactly once. */
  exit(code: number): void;
}

export interface Shutdown {
  /** A signal arrived: the first starts the sequence, the next one exits at once. */
  begin(signal: NodeJS.Signals): void;
  /** The exit code, once decided. */
  readonly exited: Promise<number>;
}

export function createShutdown(options: ShutdownOptions): Shutdown {
  const { logger, steps, timeoutMs } = options;
  let started = false;
  let done = false;
  let resolveExited: (code: number) => void = () => {};
  const exited = new Promise<number>((resolve) => (resolveExited = resolve));
  const finish = (code: number) => {
    if (done) return;
    done = true;
    resolveExited(code);
    options.exit(code);
  };

  async function run(signal: NodeJS.Signals): Promise<void> {
    const startedAt = Date.now();
    const deadline = startedAt + timeoutMs;
    let index = 0;
    let stepStartedAt = startedAt;
    let failed = false;
    const timer = setTimeout(() => {
      const step = steps[index];
      let pending: Record<string, unknown> | undefined;
      try {
        pending = step?.pending?.();
      } catch (error) {
        pending = { error: error instanceof Error ? error.message : String(error) };
      }
      logger.error(
        {
          signal,
          timeout_ms: timeoutMs,
          step: step?.name,
          step_ms: Date.now() - stepStartedAt,
          pending,
          not_run: steps.slice(index + 1).map((s) => s.name),
        },
        'shutdown timed out; exiting with work still pending',
      );
      finish(1);
    }, timeoutMs);
    for (; index < steps.length && !done; index++) {
      const step = steps[index]!;
      stepStartedAt = Date.now();
      try {
        await step.run(deadline);
        logger.debug({ step: step.name, ms: Date.now() - stepStartedAt }, 'shutdown step done');
      } catch (error) {
        failed = true;
        logger.error({ err: error, step: step.name }, 'shutdown step failed; going on with the next ones');
      }
    }
    clearTimeout(timer);
    if (done) return;
    logger.info({ signal, ms: Date.now() - startedAt }, failed ? 'stopped, with errors' : 'stopped');
    finish(failed ? 1 : 0);
  }

  return {
    begin(signal) {
      if (done) return;
      if (started) {
        logger.warn({ signal }, 'second signal while stopping: exiting now');
        finish(128 + (constants.signals[signal] ?? 0));
        return;
      }
      started = true;
      logger.info({ signal, timeout_ms: timeoutMs }, 'shutting down');
      void run(signal);
    },
    exited,
  };
}
