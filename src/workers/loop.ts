/**
 * A background loop that never throws out: it runs `iterate` again at once while there is work,
 * waits `idleMs` when there is none, backs off on repeated errors (reported through the logger),
 * and `stop()` waits for the iteration in flight.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';

export type Iteration = 'busy' | 'idle';

export interface LoopOptions {
  name: string;
  iterate: () => Promise<Iteration>;
  idleMs: number;
  /**
   * Least time between the starts of two iterations when the next one comes at once (busy, or
   * poked): under a stream of pokes the loop runs at most 1000 / minIntervalMs times a second, each
   * run taking what gathered meanwhile, instead of paying its fixed cost (queries, a checkpoint
   * write) for every few rows. Adds at most this much latency. Default 0.
   */
  minIntervalMs?: number;
  maxBackoffMs?: number;
  logger?: Logger;
}

export interface Loop {
  stop(): Promise<void>;
  /** Wakes an idle loop now (e.g. after a local write). */
  poke(): void;
}

export function startLoop(options: LoopOptions): Loop {
  let stopping = false;
  let wake: (() => void) | null = null;
  // A poke that arrives while an iteration runs must not be lost: the next pause is skipped.
  let poked = false;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      if (poked) {
        poked = false;
        resolve();
        return;
      }
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = null;
        resolve();
      }
      wake = done;
    });

  const running = (async () => {
    let failures = 0;
    let lastStart = 0;
    const minInterval = options.minIntervalMs ?? 0;
    while (!stopping) {
      try {
        const since = Date.now() - lastStart;
        if (minInterval > 0 && since < minInterval) await sleep(minInterval - since);
        if (stopping) break;
        lastStart = Date.now();
        poked = false;
        const result = await options.iterate();
        failures = 0;
        if (result === 'idle' && !stopping) await pause(options.idleMs);
      } catch (error) {
        failures++;
        if (failures === 1 || failures % 20 === 0) {
          options.logger?.warn(
            { err: error, loop: options.name, failures },
            'background loop iteration failed',
          );
        }
        if (!stopping)
          await pause(Math.min(options.maxBackoffMs ?? 5000, options.idleMs * 2 ** Math.min(failures, 10)));
      }
    }
  })();

  return {
    async stop() {
      stopping = true;
      wake?.();
      await running;
    },
    poke() {
      if (wake) wake();
      else poked = true;
    },
  };
}
