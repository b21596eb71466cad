/**
 * What the parts of the suite share: the result rows, the output format, and the `Suite` that
 * run.ts hands to the parts kept in their own files (collector.ts, lag.ts, pipeline.ts): its
 * options, its rows and its service, database and measurement helpers.
 */
import type pg from 'pg';
import { percentile, type CpuShares, type LoadResult } from './load.js';
import { ADMIN_AUTHORIZATION, type RunningService } from './service.js';

export interface Row {
  scenario: string;
  target: string;
  result: string;
  met: 'yes' | 'no' | '—';
  load?: LoadResult & { connections: number };
  extra?: object;
}

export const log = (message: string) =>
  process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${message}\n`);
export const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
export const ms = (n: number) => (Number.isFinite(n) ? `${n.toFixed(n < 10 ? 2 : 1)} ms` : '—');
/** Seconds with one decimal. */
export const secs = (n: number) => Math.round(n * 10) / 10;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface RelayDrain {
  backlog: number;
  seconds: number;
  drained: boolean;
}

export interface Counter {
  /** Events stored after the baseline taken by `mark`. */
  mark(): Promise<void>;
  count(): Promise<number>;
  /**
   * Waits (at most 60 s) until the outbox relay has published every stored event; answers the
   * backlog when called and the seconds it took to drain. Undefined where it cannot be seen.
   */
  relayDrain?(): Promise<RelayDrain>;
  close(): Promise<void>;
}

export interface MeasureOptions {
  /** Requests a second, evenly spread (an open loop, load.ts); default: a closed loop. */
  overallRate?: number;
  /**
   * Longest wait for the counter to stop moving after the warm-up and after the run, s (default
   * 9): longer where a consumer commits what was accepted (a backlog drains after the run).
   */
  settleSeconds?: number;
  /**
   * What was accepted and is not committed yet (e.g. messages a consumer has not acknowledged):
   * the counter has settled only once it is 0. Its steps can be slower than the counter's polls.
   */
  backlog?: () => Promise<number>;
  /** Called right before the measured run (after the warm-up's events are counted). */
  beforeRun?: () => Promise<void> | void;
}

export interface Measured {
  load: LoadResult;
  /** Events the store gained during the measured run (when a counter was given). */
  committed: number;
  /** Of those, the ones it had when the run ended (the rest committed while settling). */
  committedAtEnd: number;
  /** Seconds after the run until the count last moved (0: nothing was left to commit). */
  settleSeconds: number;
}

export interface Suite {
  /** --duration: seconds of each measured run. */
  readonly duration: number;
  /** --steady-rate: creates a second of the steady load under which latencies are measured. */
  readonly steadyRate: number;
  readonly rows: Row[];
  recreateDatabase(): Promise<void>;
  /** A connection to the bench database for fn, closed after it. */
  withDatabase<T>(fn: (client: pg.Client) => Promise<T>): Promise<T>;
  /**
   * With `nats`, runs fn with the URL of a private nats-server -js (its CPU reported as the bus's)
   * and stops it after; without, runs fn(undefined).
   */
  withBus<T>(nats: boolean, fn: (natsUrl: string | undefined) => Promise<T>): Promise<T>;
  /**
   * A freshly started service on the bench database (PostgreSQL) with this environment (on top of
   * --service-env) and a counter of its events, for fn; both stopped after it.
   */
  run(
    env: Record<string, string>,
    fn: (svc: RunningService, counter: Counter) => Promise<void>,
  ): Promise<void>;
  /**
   * Warm-up, then the measured run; with a counter, the events stored by it. When other programs
   * used more than --disturbed % of a core meanwhile, measures again (up to --retries times).
   */
  measure(
    svc: RunningService,
    connections: number,
    method: 'GET' | 'POST',
    next: () => { path: string; body?: string },
    counter?: Counter,
    options?: MeasureOptions,
  ): Promise<Measured>;
  /** Waits (at most --quiet-wait seconds) until the machine is nearly idle. */
  waitForQuiet(): Promise<void>;
  /** Where the CPU goes from now on (as in a run's details); the function tells it for the time since. */
  cpuMeter(svc: RunningService): () => CpuShares;
  /** "; N failed (...)" when requests failed. */
  loadSummary(load: LoadResult): string;
  /** " (disturbed: ...)" when other programs used the machine meanwhile. */
  disturbedNote(load: { cpu: CpuShares }): string;
}

/** CPU shares as the details table has them, for a measurement without a load of its own. */
export const cpuText = (cpu: CpuShares) =>
  `CPU % of a core: service ${cpu.service} / postgres ${cpu.postgres} / nats ${cpu.bus} / ` +
  `loadgen ${cpu.loadgen} / other ${cpu.other}`;

/** Percentiles of latencies (ms). */
export interface Spread {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function spread(values: readonly number[]): Spread {
  const sorted = Float64Array.from(values).sort();
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1] ?? Number.NaN),
  };
}

export const spreadText = (s: Spread) =>
  `p50 ${ms(s.p50)}, p95 ${ms(s.p95)}, p99 ${ms(s.p99)}, max ${ms(s.max)}`;

/**
 * Polls `progress` (every 200 ms) until `done` says so; gives up when it has not moved for
 * `stallSeconds` or after `maxSeconds`. Answers whether it got there and the seconds it took.
 */
export async function waitFor(
  progress: () => Promise<number> | number,
  done: (value: number) => boolean,
  limits: { stallSeconds: number; maxSeconds: number },
): Promise<{ value: number; reached: boolean; seconds: number }> {
  const started = performance.now();
  let value = await progress();
  let movedAt = started;
  while (!done(value)) {
    const now = performance.now();
    if (now - movedAt > limits.stallSeconds * 1000 || now - started > limits.maxSeconds * 1000) break;
    await sleep(200);
    const next = await progress();
    if (next !== value) movedAt = performance.now();
    value = next;
  }
  return { value, reached: done(value), seconds: secs((performance.now() - started) / 1000) };
}

/** The number a `SELECT … AS n` query with the one parameter `after` answers. */
export async function countOf(client: pg.Client, sql: string, after: number): Promise<number> {
  return Number((await client.query<{ n: string | null }>(sql, [after])).rows[0]!.n ?? 0);
}

/** The newest stored position (0 when none): events after it are the ones stored from now on. */
export async function lastPosition(client: pg.Client): Promise<number> {
  const result = await client.query<{ p: string }>(
    'SELECT COALESCE(max(position), 0) AS p FROM event.events',
  );
  return Number(result.rows[0]!.p);
}

/** POSTs JSON (a value, or its text) to the service; the parsed answer, or an error naming the status. */
export async function postJson<T>(svc: RunningService, path: string, body: unknown): Promise<T> {
  const response = await fetch(`${svc.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: ADMIN_AUTHORIZATION },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST ${path}: HTTP ${response.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}
