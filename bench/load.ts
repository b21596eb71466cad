/** autocannon, driven programmatically: exact latency percentiles and where the CPU went. */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import autocannon from 'autocannon';
import { Pool } from 'undici';

export interface LoadOptions {
  url: string;
  method: 'GET' | 'POST';
  connections: number;
  durationSec: number;
  /** A new request path or body for every request (called per request). */
  next: () => { path: string; body?: string };
  /** CPU seconds of the service process, to report its share of the machine. */
  serviceCpu?: () => number;
  /** CPU seconds of the message bus server (a private nats-server), when there is one. */
  busCpu?: () => number;
  /** The PostgreSQL database the service uses (undefined: embedded, no PostgreSQL of its own). */
  database?: string;
  timeoutSec?: number;
  /** `Authorization` header value of every request (the bench service's credential). */
  authorization?: string;
  /**
   * Requests a second over all connections, evenly spread (an open loop, see `openLoop`); default:
   * as many as the connections get answered (autocannon, a closed loop).
   */
  overallRate?: number;
}

export interface LoadResult {
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statuses: Record<string, number>;
  seconds: number;
  /** Successful requests per second. */
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /**
   * CPU use over the run in percent of one core: the service process, PostgreSQL (all its
   * processes), the bus server (nats-server), the load generator (this process); machine: busy share of all cores, 0-100;
   * other: what the rest of the machine used (other programs: a disturbed measurement).
   */
  cpu: { service: number; postgres: number; bus: number; loadgen: number; machine: number; other: number };
}

function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  const total = values.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Busy share (0-1) of all cores over the next `ms` milliseconds. */
export async function machineBusy(ms: number): Promise<number> {
  const before = machineCpu();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = machineCpu();
  return (after.busy - before.busy) / Math.max(1, after.total - before.total);
}

/**
 * CPU seconds used so far by PostgreSQL on behalf of `database`, per process: its server processes
 * (checkpointer, WAL writer, ...), the backends connected to that database (their process title
 * names it) and their parallel workers. Backends of other databases (other programs) are left
 * out, so that they show up as "other".
 */
function postgresCpu(database: string | undefined): Map<number, number> {
  const cpu = new Map<number, number>();
  if (database === undefined) return cpu;
  const workers: { pid: number; leader: number; seconds: number }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (!stat.includes('(postgres)')) continue;
      const title = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const seconds = (Number(fields[11]) + Number(fields[12])) / 100;
      const worker = /parallel worker for PID (\d+)/.exec(title);
      if (worker) {
        workers.push({ pid: Number(entry), leader: Number(worker[1]), seconds });
        continue;
      }
      const backend = /\(\d+\)|\[local\]/.test(title);
      if (backend && !title.includes(` ${database} `)) continue;
      cpu.set(Number(entry), seconds);
    } catch {
      // the process ended
    }
  }
  for (const worker of workers) if (cpu.has(worker.leader)) cpu.set(worker.pid, worker.seconds);
  return cpu;
}

/** CPU seconds between two snapshots; processes that started count whole, ended ones are lost. */
function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, seconds] of after) total += Math.max(0, seconds - (before.get(pid) ?? 0));
  return total;
}

/** Nearest-rank percentile `p` (0-100) of ascending values; NaN when there are none. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

/** What a load driver reports besides each response (which it hands to `record`). */
interface Driven {
  non2xx: number;
  errors: number;
  timeouts: number;
  /** The run's own measure of its length, s (autocannon's); default: the wall-clock time. */
  duration?: number;
}

type Recorder = (statusCode: number, latencyMs: number) => void;

function jsonHeaders(authorization: string | undefined): Record<string, string> {
  return authorization === undefined
    ? { 'content-type': 'application/json' }
    : { 'content-type': 'application/json', authorization };
}

/** Closed loop: each connection sends its next request when the previous one is answered. */
function closedLoop(options: LoadOptions, record: Recorder): Promise<Driven> {
  return new Promise<Driven>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        duration: options.durationSec,
        timeout: options.timeoutSec ?? 10,
        requests: [
          {
            method: options.method,
            headers: jsonHeaders(options.authorization),
            setupRequest: (request) => {
              const next = options.next();
              return { ...request, path: next.path, body: next.body };
            },
          },
        ],
      },
      (error: unknown, res) =>
        error
          ? reject(error instanceof Error ? error : new Error(JSON.stringify(error)))
          : resolve({
              non2xx: res.non2xx,
              errors: res.errors,
              timeouts: res.timeouts,
              duration: res.duration,
            }),
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => record(statusCode, responseTime));
    // Hard bound, whatever happens to the connections.
    const guard = setTimeout(() => instance.stop(), (options.durationSec + 30) * 1000);
    instance.once('done', () => clearTimeout(guard));
  });
}

/**
 * Open loop at `rate` requests a second, evenly spread: every 5 ms the requests due by then are
 * started (autocannon's own rate limit sends each connection's share of a second in one burst at
 * its start). At most `connections` are in flight (an undici Pool); the others wait in its queue,
 * and the wait counts in their latency, so a service that falls behind shows it.
 */
async function openLoop(options: LoadOptions, rate: number, record: Recorder): Promise<Driven> {
  const timeoutMs = (options.timeoutSec ?? 10) * 1000;
  const pool = new Pool(options.url, {
    connections: options.connections,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const driven: Driven = { non2xx: 0, errors: 0, timeouts: 0 };
  const inFlight = new Set<Promise<void>>();
  const send = () => {
    const next = options.next();
    const sentAt = performance.now();
    const request = pool
      .request({
        path: next.path,
        method: options.method,
        headers: jsonHeaders(options.authorization),
        body: next.body,
      })
      .then(async (response) => {
        await response.body.dump();
        record(response.statusCode, performance.now() - sentAt);
        if (response.statusCode < 200 || response.statusCode >= 300) driven.non2xx++;
      })
      .catch((error: unknown) => {
        driven.errors++;
        const code = (error as { code?: string }).code;
        if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') driven.timeouts++;
      })
      .finally(() => inFlight.delete(request));
    inFlight.add(request);
  };
  const started = performance.now();
  const end = started + options.durationSec * 1000;
  let sent = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = Math.min(performance.now(), end);
      const due = Math.floor(((now - started) / 1000) * rate);
      for (; sent < due; sent++) send();
      if (now >= end) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
  });
  await Promise.all(inFlight); // each bounded by the timeouts
  await pool.close();
  return driven;
}

export type CpuShares = LoadResult['cpu'];

/** Whose CPU use a `cpuMeter` tells apart (LoadOptions: serviceCpu, busCpu, database). */
export type CpuTargets = Pick<LoadOptions, 'serviceCpu' | 'busCpu' | 'database'>;

/** Starts measuring where the CPU goes; the function it returns tells it for the time since. */
export function cpuMeter(targets: CpuTargets): () => { seconds: number; cpu: CpuShares } {
  const machineBefore = machineCpu();
  const loadgenBefore = process.cpuUsage();
  const serviceBefore = targets.serviceCpu?.() ?? 0;
  const busBefore = targets.busCpu?.() ?? 0;
  const postgresBefore = postgresCpu(targets.database);
  const started = performance.now();
  return () => {
    const seconds = (performance.now() - started) / 1000;
    const machineAfter = machineCpu();
    const loadgen = process.cpuUsage(loadgenBefore);
    const serviceSeconds = (targets.serviceCpu?.() ?? 0) - serviceBefore;
    const busSeconds = (targets.busCpu?.() ?? 0) - busBefore;
    const postgresSeconds = cpuBetween(postgresBefore, postgresCpu(targets.database));
    const machine =
      (machineAfter.busy - machineBefore.busy) / Math.max(1, machineAfter.total - machineBefore.total);
    const cpu = {
      service: Math.round((serviceSeconds / seconds) * 100),
      postgres: Math.round((postgresSeconds / seconds) * 100),
      bus: Math.round((busSeconds / seconds) * 100),
      loadgen: Math.round(((loadgen.user + loadgen.system) / 1e6 / seconds) * 100),
      machine: Math.round(machine * 100),
    };
    const other = Math.round(
      machine * cpus().length * 100 - cpu.service - cpu.postgres - cpu.bus - cpu.loadgen,
    );
    return { seconds, cpu: { ...cpu, other: Math.max(0, other) } };
  };
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const record: Recorder = (statusCode, latencyMs) => {
    statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
    if (statusCode >= 200 && statusCode < 300) latencies.push(latencyMs);
  };
  const meter = cpuMeter(options);
  const result = options.overallRate
    ? await openLoop(options, options.overallRate, record)
    : await closedLoop(options, record);
  const { seconds, cpu } = meter();
  const sorted = Float64Array.from(latencies).sort();
  const ok = latencies.length;
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statuses,
    seconds: round(seconds),
    rps: Math.round(ok / (result.duration || seconds)),
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1] ?? Number.NaN),
    cpu,
  };
}
