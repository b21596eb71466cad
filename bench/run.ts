/**
 * The benchmark suite: `npm run bench -- [flags]`. Runs the service as a child process (PostgreSQL in
 * a dedicated database that it drops and recreates, then embedded PGlite in temporary directories),
 * drives it from this process (autocannon; at a fixed rate, an open loop of its own: load.ts), and
 * prints a markdown table: scenario, target, result, met. See docs/benchmarks.md.
 *
 * Flags:
 *   --only ingest,create,nats,collector,lag,processing,delivery,projection,rebuild,replay,query,embedded
 *                                         parts to run, in this order (default: all but nats); nats =
 *                                         ingest and create again with the bus on a private
 *                                         nats-server -js (NATS_URL) instead of the in-process one;
 *                                         collector = the frontend collector, single events, with the
 *                                         in-process bus and with NATS (collector.ts); lag = commit →
 *                                         event.stored on NATS at 10,000 events/s (lag.ts);
 *                                         processing = a publish processor's throughput and
 *                                         create → processed latency, in-process bus and NATS;
 *                                         delivery = webhook deliveries to a receiver in this process,
 *                                         throughput and create → received latency (pipeline.ts);
 *                                         projection = reading the default projection of a
 *                                         10,000-event stream, current and as of past versions
 *                                         (projection.ts); rebuild = a declared projection
 *                                         computed from 200,000 stored events in 2,000
 *                                         streams, when registered and when rebuilt, in
 *                                         events/s (rebuild.ts); replay = a replay of
 *                                         500,000 seeded events by time range to a private
 *                                         nats-server, in events/s (replay.ts)
 *   --events 10m                          stored events for the query part (seeded, see seed.ts)
 *   --embedded-events 100k                stored events for the embedded query part
 *   --duration 15                         seconds per measured scenario (plus --warmup 3 before each);
 *                                         the processing and delivery throughput parts queue as many
 *                                         events as their targets take in that time
 *   --batch-connections 8                 connections for batch ingest
 *   --create-connections 1,16,64          concurrencies for single create (embedded: first two)
 *   --collector-connections 64            concurrency for the frontend collector
 *   --steady-rate 1000                    creates/s (evenly spread) under which the processing and
 *                                         delivery latencies are measured
 *   --query-connections 1,8               concurrencies for the query and statistics scenarios
 *                                         (embedded: the first)
 *   --admin-url postgres://postgres@127.0.0.1:5432/postgres   where to drop/create the database
 *   --database event_bench                the dedicated database (dropped and recreated!)
 *   --reuse-seed                          keep the query database when it already holds --events events
 *   --built                               run dist/src/main.js (npm run build first) instead of tsx
 *   --credential admin                    what the load authenticates with: admin = the ADMIN_API_KEY
 *                                         of the environment (compared in memory); key = an API key
 *                                         of the database with events:read and events:write (from
 *                                         the service's key cache after the first request; the
 *                                         per-credential rate limit off). Set-up calls use the admin key
 *   --log-level warn                      the service's LOG_LEVEL
 *   --service-env NAME=value,...          more environment for the service (e.g. NATS_URL=nats://127.0.0.1:4222)
 *   --json results.json                   also write every measurement as JSON
 *   --max-minutes 45                      hard stop for the whole run
 *   --quiet-below 20 --quiet-wait 20      before each measurement wait (at most 20 s) until the whole
 *                                         machine is less than 20% busy (other programs: tests, builds)
 *   --disturbed 30 --retries 0            with --retries n, measure again (up to n times) when other
 *                                         programs used more than 30% of a core during a measurement
 *                                         and keep the calmest attempt; disturbed results are marked
 */
import { cpus, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { flag, numberFlag, parseArgs } from './args.js';
import { collectorPart } from './collector.js';
import { lagPart } from './lag.js';
import { cpuMeter, machineBusy, runLoad, type LoadResult } from './load.js';
import { startNats } from './nats.js';
import { anyUser, bodyPool, cycle, makeEvent, rng } from './payloads.js';
import { deliveryPart, processingPart } from './pipeline.js';
import { projectionPart } from './projection.js';
import { rebuildPart } from './rebuild.js';
import { replayPart } from './replay.js';
import { EVENT_TYPES, openSeedDb, seedEvents, SOURCES } from './seed.js';
import {
  ADMIN_AUTHORIZATION,
  removeOnExit,
  ROOT,
  startService,
  type BenchCredential,
  type RunningService,
} from './service.js';
import {
  fmt,
  log,
  ms,
  secs,
  sleep,
  type Counter,
  type Measured,
  type MeasureOptions,
  type RelayDrain,
  type Row,
  type Suite,
} from './suite.js';

const PARTS = [
  'ingest',
  'create',
  'nats',
  'collector',
  'lag',
  'processing',
  'delivery',
  'projection',
  'rebuild',
  'replay',
  'query',
  'embedded',
] as const;

const args = parseArgs(process.argv.slice(2));
const list = (name: string, fallback: string) =>
  (flag(args, name) ?? fallback)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const only = new Set(
  list('only', 'ingest,create,collector,lag,processing,delivery,projection,rebuild,replay,query,embedded'),
);
for (const part of only) {
  if (!(PARTS as readonly string[]).includes(part))
    throw new Error(`--only: unknown part ${part} (${PARTS.join(', ')})`);
}
const opts = {
  events: numberFlag(args, 'events', 10_000_000),
  embeddedEvents: numberFlag(args, 'embedded-events', 100_000),
  duration: numberFlag(args, 'duration', 15),
  warmup: numberFlag(args, 'warmup', 3),
  batchConnections: numberFlag(args, 'batch-connections', 8),
  createConnections: list('create-connections', '1,16,64').map(Number),
  collectorConnections: numberFlag(args, 'collector-connections', 64),
  steadyRate: numberFlag(args, 'steady-rate', 1000),
  queryConnections: list('query-connections', '1,8').map(Number),
  adminUrl:
    flag(args, 'admin-url') ?? process.env.BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  database: flag(args, 'database') ?? 'event_bench',
  reuseSeed: args.has('reuse-seed'),
  built: args.has('built'),
  credential: ((): BenchCredential => {
    const value = flag(args, 'credential') ?? 'admin';
    if (value !== 'admin' && value !== 'key') throw new Error(`--credential: ${value} is not admin or key`);
    return value;
  })(),
  logLevel: flag(args, 'log-level') ?? 'warn',
  json: flag(args, 'json'),
  maxMinutes: numberFlag(args, 'max-minutes', 45),
  retries: numberFlag(args, 'retries', 0),
  quietBelow: numberFlag(args, 'quiet-below', 20),
  quietWait: numberFlag(args, 'quiet-wait', 20),
  serviceEnv: Object.fromEntries(
    list('service-env', '').map((pair) => {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new Error(`--service-env: ${pair} is not NAME=value`);
      return [pair.slice(0, eq), pair.slice(eq + 1)];
    }),
  ),
  disturbed: numberFlag(args, 'disturbed', 30),
};
if (!/^[a-z_][a-z0-9_]*$/.test(opts.database)) throw new Error('--database: letters, digits and _ only');
const benchUrl = (() => {
  const url = new URL(opts.adminUrl);
  url.pathname = `/${opts.database}`;
  return url.toString();
})();

const rows: Row[] = [];
let service: RunningService | undefined;
/** CPU seconds of the private nats-server while one runs. */
let busCpu: (() => number) | undefined;

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, statement_timeout: 600_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function recreateDatabase(): Promise<void> {
  await withClient(opts.adminUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${opts.database} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${opts.database}`);
  });
  log(`database ${opts.database} recreated`);
}

async function start(
  options: { databaseUrl?: string; dataDir?: string },
  env: Record<string, string> = {},
): Promise<RunningService> {
  const extraEnv = { ...opts.serviceEnv, ...env };
  service = await startService({
    ...options,
    logLevel: opts.logLevel,
    built: opts.built,
    extraEnv,
    credential: opts.credential,
  });
  log(
    `service started (pid ${service.pid}, ${service.url}, ${options.databaseUrl ? 'PostgreSQL' : 'PGlite'}, ` +
      `${extraEnv.NATS_URL ? 'NATS' : 'in-process'} bus)`,
  );
  return service;
}

async function stop(): Promise<void> {
  if (!service) return;
  const current = service;
  service = undefined;
  await current.stop();
  log('service stopped');
}

/**
 * Counts events until the number stops moving for 300 ms and `backlog` (when given) is empty, at
 * most `maxSeconds` (requests cut off at the end may still commit, a consumer may still work
 * through its backlog): the count and the seconds until it last moved.
 */
async function settled(
  count: () => Promise<number>,
  { maxSeconds = 9, backlog }: { maxSeconds?: number; backlog?: () => Promise<number> } = {},
): Promise<{ count: number; seconds: number }> {
  const started = performance.now();
  let last = await count();
  let movedAt = started;
  while (performance.now() - started < maxSeconds * 1000) {
    await sleep(300);
    // The backlog first: once it is empty, the count that follows has all of it.
    const empty = backlog ? (await backlog()) === 0 : true;
    const now = await count();
    if (now === last && empty) break;
    if (now !== last) movedAt = performance.now();
    last = now;
  }
  return { count: last, seconds: secs((movedAt - started) / 1000) };
}

function loadSummary(load: LoadResult): string {
  const failures = load.non2xx + load.errors;
  return failures > 0
    ? `; ${fmt(failures)} failed (${JSON.stringify(load.statuses)}, ${load.errors} errors)`
    : '';
}

/**
 * Warm-up, then the measured run; with a counter, the events stored by it. When other programs
 * used more than --disturbed % of a core meanwhile, waits and measures again (up to --retries
 * times) and keeps the least disturbed attempt.
 */
async function measure(
  svc: RunningService,
  connections: number,
  method: 'GET' | 'POST',
  next: () => { path: string; body?: string },
  counter?: Counter,
  options: MeasureOptions = {},
): Promise<Measured> {
  const { overallRate } = options;
  const settling = { maxSeconds: options.settleSeconds, backlog: options.backlog };
  let best: Measured | undefined;
  for (let attempt = 0; attempt <= opts.retries; attempt++) {
    if (attempt > 0) {
      log(`  disturbed (other programs used ${best!.load.cpu.other}% of a core): once more`);
    }
    await waitForQuiet();
    if (opts.warmup > 0) {
      await runLoad({
        url: svc.url,
        method,
        connections,
        durationSec: opts.warmup,
        next,
        overallRate,
        authorization: svc.authorization,
      });
    }
    if (counter) {
      // Requests cut off at the end of the warm-up may still commit: wait for them.
      await counter.mark();
      await settled(() => counter.count(), settling);
      await counter.mark();
    }
    await options.beforeRun?.();
    const load = await runLoad({
      url: svc.url,
      method,
      connections,
      durationSec: opts.duration,
      next,
      serviceCpu: () => svc.cpuSeconds(),
      busCpu: busCpu,
      database: svc.database,
      overallRate,
      authorization: svc.authorization,
    });
    const committedAtEnd = counter ? await counter.count() : 0;
    const after = counter ? await settled(() => counter.count(), settling) : { count: 0, seconds: 0 };
    if (!best || load.cpu.other < best.load.cpu.other) {
      best = { load, committed: after.count, committedAtEnd, settleSeconds: after.seconds };
    }
    if (best.load.cpu.other <= opts.disturbed) break;
  }
  return best!;
}

/** Waits (at most --quiet-wait seconds) until the machine is nearly idle before a measurement. */
async function waitForQuiet(): Promise<void> {
  const started = performance.now();
  let busy = await machineBusy(1000);
  while (busy * 100 > opts.quietBelow && performance.now() - started < opts.quietWait * 1000) {
    busy = await machineBusy(2000);
  }
  const waited = Math.round((performance.now() - started) / 1000);
  if (waited > 2) {
    log(`  waited ${waited} s for a quiet machine (now ${Math.round(busy * 100)}% busy)`);
  }
}

function disturbedNote(load: Pick<LoadResult, 'cpu'>): string {
  return load.cpu.other > opts.disturbed
    ? ` (disturbed: other programs used ${load.cpu.other}% of a core)`
    : '';
}

// ---------------------------------------------------------------- write scenarios

function relayNote(relay: RelayDrain | undefined): string {
  if (!relay) return '';
  if (relay.backlog === 0) return '; relay kept up';
  return `; relay ${fmt(relay.backlog)} events behind at the end, ${relay.drained ? `caught up in ${relay.seconds} s` : `still behind after ${relay.seconds} s`}`;
}

async function pgCounter(): Promise<Counter> {
  const client = new pg.Client({ connectionString: benchUrl, statement_timeout: 60_000 });
  await client.connect();
  let base = 0;
  return {
    async mark() {
      const result = await client.query<{ p: string }>(
        'SELECT COALESCE(max(position), 0) AS p FROM event.events',
      );
      base = Number(result.rows[0]!.p);
    },
    async count() {
      const result = await client.query<{ n: string }>(
        'SELECT count(*) AS n FROM event.events WHERE position > $1',
        [base],
      );
      return Number(result.rows[0]!.n);
    },
    async relayDrain() {
      const backlogNow = async () => {
        const result = await client.query<{ n: string | null }>(
          `SELECT (SELECT COALESCE(max(position), 0) FROM event.events)
                - (SELECT position FROM event.relay_checkpoints WHERE name = 'event.stored') AS n`,
        );
        return Math.max(0, Number(result.rows[0]?.n ?? 0));
      };
      let backlog: number;
      try {
        backlog = await backlogNow();
      } catch {
        return { backlog: 0, seconds: 0, drained: true }; // no relay in this schema
      }
      const started = performance.now();
      let left = backlog;
      while (left > 0 && performance.now() - started < 60_000) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        left = await backlogNow();
      }
      return { backlog, seconds: Math.round((performance.now() - started) / 100) / 10, drained: left === 0 };
    },
    close: () => client.end(),
  };
}

/** The embedded store is held by the service: count through its API (total from the rollups). */
function httpCounter(svc: RunningService): Counter {
  const total = async () => {
    const response = await fetch(`${svc.url}/api/v1/events/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: ADMIN_AUTHORIZATION },
      body: JSON.stringify({ limit: 1 }),
      signal: AbortSignal.timeout(30_000),
    });
    if (!response.ok) throw new Error(`count: HTTP ${response.status}`);
    return ((await response.json()) as { total: number }).total;
  };
  let base = 0;
  return {
    async mark() {
      base = await total();
    },
    count: async () => (await total()) - base,
    close: async () => undefined,
  };
}

/**
 * Where write scenarios run: each scenario gets a freshly started service (same store), so that
 * state one scenario leaves in the service (its in-process bus, caches) does not weigh on the next.
 */
interface WriteTarget {
  store: string;
  /** Targets apply (PostgreSQL) or the figures are only reported (PGlite). */
  judged: boolean;
  run(fn: (svc: RunningService, counter: Counter) => Promise<void>): Promise<void>;
}

async function ingestScenarios(target: WriteTarget) {
  for (const size of [100, 1000]) {
    const name = `${target.store}: batch ingest, ${size} events/request (${opts.batchConnections} conns)`;
    log(name);
    await target.run((svc, counter) => ingestOne(svc, counter, name, size, target.judged));
  }
}

async function ingestOne(svc: RunningService, counter: Counter, name: string, size: number, target: boolean) {
  const pool = bodyPool(size === 1000 ? 16 : 64, (random) => ({
    events: Array.from({ length: size }, () => makeEvent(random)),
  }));
  const nextBody = cycle(pool);
  const next = () => ({ path: '/api/v1/events/batch', body: nextBody() });
  const { load, committed } = await measure(svc, opts.batchConnections, 'POST', next, counter);
  const relay = await counter.relayDrain?.();
  const acked = load.ok * size;
  const rate = load.rps * size;
  // Requests cut off at the end, or timed out at the client, may still commit.
  const consistent = committed >= acked && committed <= acked + (opts.batchConnections + load.errors) * size;
  rows.push({
    scenario: name,
    target: target ? '≥ 40,000 events/s' : '—',
    result:
      `${fmt(rate)} events/s (${fmt(acked)} acknowledged in ${load.seconds} s; ` +
      `${fmt(committed)} counted in the store${consistent ? '' : ' — MISMATCH'}); p99 ${ms(load.p99)}` +
      relayNote(relay) +
      loadSummary(load) +
      disturbedNote(load),
    met: target ? (rate >= 40_000 && consistent ? 'yes' : 'no') : '—',
    load: { ...load, connections: opts.batchConnections },
    extra: { eventsPerSecond: rate, acked, committed, batchSize: size, relay },
  });
  log(`  ${rows[rows.length - 1]!.result}`);
}

async function createScenarios(target: WriteTarget, concurrencies: number[]) {
  for (const connections of concurrencies) {
    const name = `${target.store}: single create, concurrency ${connections}`;
    log(name);
    await target.run((svc, counter) => createOne(svc, counter, name, connections, target.judged));
  }
}

async function createOne(
  svc: RunningService,
  counter: Counter,
  name: string,
  connections: number,
  target: boolean,
) {
  const nextBody = cycle(bodyPool(4096, makeEvent, 7));
  const next = () => ({ path: '/api/v1/events/create', body: nextBody() });
  const { load, committed } = await measure(svc, connections, 'POST', next, counter);
  const relay = await counter.relayDrain?.();
  const consistent = committed >= load.ok && committed <= load.ok + connections + load.errors;
  const judged = target && connections === 64;
  rows.push({
    scenario: name,
    target: judged ? '≥ 8,000/s and p99 < 10 ms' : '—',
    result:
      `${fmt(load.rps)} creates/s, p50 ${ms(load.p50)}, p99 ${ms(load.p99)} ` +
      `(${fmt(committed)} counted in the store${consistent ? '' : ' — MISMATCH'})` +
      relayNote(relay) +
      loadSummary(load) +
      disturbedNote(load),
    met: judged ? (load.rps >= 8_000 && load.p99 < 10 && consistent ? 'yes' : 'no') : '—',
    load: { ...load, connections },
    extra: { committed, relay },
  });
  log(`  ${rows[rows.length - 1]!.result}`);
}

// ---------------------------------------------------------------- read scenarios

interface ReadScenario {
  name: string;
  targetMs?: number;
  method: 'GET' | 'POST';
  next: () => { path: string; body?: string };
}

function readScenarios(range: { from: number; to: number }): ReadScenario[] {
  const random = rng(1234);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const types = EVENT_TYPES.map((t) => t[0]);
  const iso = (t: number) => new Date(t).toISOString();
  const DAY = 86_400_000;
  // A 24-hour window at an arbitrary (not hour-aligned) start inside the stored range.
  const window = (length: number) => {
    const start = range.from + random() * Math.max(0, range.to - range.from - length);
    return `start_time=${encodeURIComponent(iso(start))}&end_time=${encodeURIComponent(iso(start + length))}`;
  };
  const query = (body: unknown) => () => ({ path: '/api/v1/events/query', body: JSON.stringify(body) });
  return [
    {
      name: "query: one user's newest 100 {user_id, limit: 100}",
      targetMs: 10,
      method: 'POST',
      next: () => query({ user_id: anyUser(random), limit: 100 })(),
    },
    {
      name: 'query: page of 1000 by type {event_type, limit: 1000}',
      targetMs: 50,
      method: 'POST',
      next: () => query({ event_type: pick(types), limit: 1000 })(),
    },
    {
      name: 'query: page of 1000 by source {event_source, limit: 1000}',
      targetMs: 50,
      method: 'POST',
      next: () => query({ event_source: pick(SOURCES), limit: 1000 })(),
    },
    {
      name: 'statistics, no filter',
      targetMs: 20,
      method: 'GET',
      next: () => ({ path: '/api/v1/events/statistics' }),
    },
    {
      name: 'statistics ?user_id=',
      targetMs: 20,
      method: 'GET',
      next: () => ({ path: `/api/v1/events/statistics?user_id=${anyUser(random)}` }),
    },
    {
      name: 'statistics, 24 h range (random, not hour-aligned)',
      targetMs: 20,
      method: 'GET',
      next: () => ({ path: `/api/v1/events/statistics?${window(DAY)}` }),
    },
    {
      name: 'statistics, 7 day range (random, not hour-aligned)',
      targetMs: 20,
      method: 'GET',
      next: () => ({ path: `/api/v1/events/statistics?${window(7 * DAY)}` }),
    },
  ];
}

async function runReads(
  svc: RunningService,
  store: string,
  stored: number,
  range: { from: number; to: number },
  target: boolean,
  concurrencies: number[],
) {
  for (const scenario of readScenarios(range)) {
    for (const connections of concurrencies) {
      const name = `${store} @ ${fmt(stored)} events: ${scenario.name}, ${connections} conn${connections > 1 ? 's' : ''}`;
      log(name);
      const { load } = await measure(svc, connections, scenario.method, scenario.next);
      const judged = target && scenario.targetMs !== undefined;
      rows.push({
        scenario: name,
        target: judged ? `p95 < ${scenario.targetMs} ms` : '—',
        result: `p50 ${ms(load.p50)}, p95 ${ms(load.p95)}, p99 ${ms(load.p99)}; ${fmt(load.rps)} req/s${loadSummary(load)}${disturbedNote(load)}`,
        met: judged ? (load.p95 < scenario.targetMs! && load.non2xx + load.errors === 0 ? 'yes' : 'no') : '—',
        load: { ...load, connections },
      });
      log(`  ${rows[rows.length - 1]!.result}`);
    }
  }
}

interface SqlClient {
  query<T>(sql: string): Promise<{ rows: T[] }>;
}

const sqlClient = (client: pg.Client): SqlClient => ({
  query: async <T>(sql: string) => ({ rows: (await client.query(sql)).rows as T[] }),
});

async function storedRange(client: SqlClient) {
  const result = await client.query<{ n: string | number; lo: Date | null; hi: Date | null }>(
    `SELECT (SELECT count(*) FROM event.events) AS n,
            (SELECT min("timestamp") FROM event.events) AS lo,
            (SELECT max("timestamp") FROM event.events) AS hi`,
  );
  const row = result.rows[0]!;
  return {
    count: Number(row.n),
    from: row.lo?.getTime() ?? Date.now() - 60 * 86_400_000,
    to: row.hi?.getTime() ?? Date.now(),
  };
}

// ---------------------------------------------------------------- parts

/** With `nats`, fn gets the URL of a private nats-server -js (its CPU counted as the bus's), stopped after. */
async function withBus<T>(nats: boolean, fn: (natsUrl: string | undefined) => Promise<T>): Promise<T> {
  if (!nats) return fn(undefined);
  const server = await startNats();
  log(`private nats-server with JetStream at ${server.url}`);
  busCpu = () => server.cpuSeconds();
  try {
    return await fn(server.url);
  } finally {
    busCpu = undefined;
    await server.stop();
  }
}

/** A freshly started service on the bench database and a counter of its events, both stopped after fn. */
async function onPostgres(
  env: Record<string, string>,
  fn: (svc: RunningService, counter: Counter) => Promise<void>,
): Promise<void> {
  const svc = await start({ databaseUrl: benchUrl }, env);
  const counter = await pgCounter();
  try {
    await fn(svc, counter);
  } finally {
    await counter.close();
    await stop();
  }
}

async function pgWrites(parts: Set<string>, withNats: boolean) {
  await recreateDatabase();
  await withBus(withNats, async (natsUrl) => {
    const target: WriteTarget = {
      store: natsUrl ? 'PostgreSQL + NATS' : 'PostgreSQL',
      judged: true,
      run: (fn) => onPostgres(natsUrl ? { NATS_URL: natsUrl } : {}, fn),
    };
    if (parts.has('ingest')) await ingestScenarios(target);
    if (parts.has('create')) await createScenarios(target, opts.createConnections);
  });
}

async function pgReads() {
  let existing = -1;
  if (opts.reuseSeed) {
    existing = await withClient(
      benchUrl,
      async (client) => (await storedRange(sqlClient(client))).count,
    ).catch(() => -1);
  }
  if (existing === opts.events) {
    log(`reusing ${opts.database}: it holds ${fmt(existing)} events`);
  } else {
    await recreateDatabase();
    log(`seeding ${fmt(opts.events)} events (bench/seed.ts)`);
    const db = await openSeedDb({ databaseUrl: benchUrl });
    try {
      const seeded = await seedEvents(db, { events: opts.events, log: (m) => log(`  seed: ${m}`) });
      rows.push({
        scenario: `PostgreSQL: seed ${fmt(opts.events)} events (bench/seed.ts)`,
        target: '—',
        result: `${seeded.seconds.total} s (load ${seeded.seconds.load} s, indexes ${seeded.seconds.indexes} s, rollups ${seeded.seconds.rollups} s, VACUUM ANALYZE ${seeded.seconds.vacuum} s)`,
        met: '—',
        extra: seeded,
      });
    } finally {
      await db.close();
    }
  }
  const range = await withClient(benchUrl, (client) => storedRange(sqlClient(client)));
  const svc = await start({ databaseUrl: benchUrl });
  try {
    await runReads(svc, 'PostgreSQL', range.count, range, true, opts.queryConnections);
  } finally {
    await stop();
  }
}

async function embedded() {
  const writeDir = removeOnExit(mkdtempSync(join(tmpdir(), 'event-bench-pglite-')));
  const readDir = removeOnExit(mkdtempSync(join(tmpdir(), 'event-bench-pglite-')));
  try {
    const target: WriteTarget = {
      store: 'PGlite',
      judged: false,
      async run(fn) {
        const svc = await start({ dataDir: writeDir });
        try {
          await fn(svc, httpCounter(svc));
        } finally {
          await stop();
        }
      },
    };
    await ingestScenarios(target);
    await createScenarios(target, opts.createConnections.slice(0, 2));

    log(`PGlite: seeding ${fmt(opts.embeddedEvents)} events (bench/seed.ts)`);
    const db = await openSeedDb({ dataDir: readDir });
    let range: { from: number; to: number; count: number };
    try {
      const seeded = await seedEvents(db, {
        events: opts.embeddedEvents,
        chunk: 100_000,
        log: (m) => log(`  seed: ${m}`),
      });
      rows.push({
        scenario: `PGlite: seed ${fmt(opts.embeddedEvents)} events (bench/seed.ts)`,
        target: '—',
        result: `${seeded.seconds.total} s`,
        met: '—',
        extra: seeded,
      });
      range = await storedRange(db);
    } finally {
      await db.close();
    }
    const reader = await start({ dataDir: readDir });
    try {
      await runReads(reader, 'PGlite', range.count, range, false, opts.queryConnections.slice(0, 1));
    } finally {
      await stop();
    }
  } finally {
    rmSync(writeDir, { recursive: true, force: true });
    rmSync(readDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- report

function sh(command: string, argv: string[]): string {
  try {
    return execFileSync(command, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '?';
  }
}

async function environment(): Promise<Record<string, string>> {
  const pgInfo = await withClient(opts.adminUrl, async (client) => {
    const version = await client.query<{ v: string }>('SELECT version() AS v');
    const settings = await client.query<{ name: string; setting: string; unit: string | null }>(
      `SELECT name, setting, unit FROM pg_settings
       WHERE name IN ('shared_buffers', 'synchronous_commit', 'max_wal_size', 'work_mem')`,
    );
    return {
      version: version.rows[0]!.v.split(' on ')[0]!,
      settings: settings.rows.map((s) => `${s.name}=${s.setting}${s.unit ?? ''}`).join(', '),
    };
  }).catch((error: unknown) => ({ version: `unreachable (${String(error)})`, settings: '' }));
  return {
    cpu: `${cpus()[0]?.model ?? '?'}; nproc ${sh('nproc', [])}`,
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    postgres: `${pgInfo.version} (${pgInfo.settings})`,
    commit:
      sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']) +
      (sh('git', ['--no-optional-locks', '-C', ROOT, 'status', '--porcelain', '--', 'src']) === ''
        ? ''
        : ' (src/ has uncommitted changes)'),
    service: opts.built ? 'node dist/src/main.js' : 'node --import tsx src/main.ts',
    flags: process.argv.slice(2).join(' ') || '(defaults)',
  };
}

function table(): string {
  const header = '| Scenario | Target | Result | Met |\n|---|---|---|---|';
  const body = rows.map((r) => `| ${r.scenario} | ${r.target} | ${r.result} | ${r.met} |`).join('\n');
  return `${header}\n${body}`;
}

function detailTable(): string {
  const header =
    '| Scenario | Conns | OK req/s | p50 | p95 | p99 | max | failed | CPU % of a core: service / postgres / nats / loadgen / other | machine busy |\n|---|---|---|---|---|---|---|---|---|---|';
  const body = rows
    .filter((r) => r.load)
    .map((r) => {
      const l = r.load!;
      return `| ${r.scenario} | ${l.connections} | ${fmt(l.rps)} | ${ms(l.p50)} | ${ms(l.p95)} | ${ms(l.p99)} | ${ms(l.max)} | ${l.non2xx + l.errors} | ${l.cpu.service} / ${l.cpu.postgres} / ${l.cpu.bus} / ${l.cpu.loadgen} / ${l.cpu.other} | ${l.cpu.machine}% |`;
    })
    .join('\n');
  return `${header}\n${body}`;
}

function report(env: Record<string, string>, minutes: number, note = ''): void {
  const text = [
    '',
    `## Results (${new Date().toISOString()}, ${minutes} min${note})`,
    '',
    ...Object.entries(env).map(([k, v]) => `- ${k}: ${v}`),
    '',
    table(),
    '',
    '### Details',
    '',
    detailTable(),
    '',
  ].join('\n');
  process.stdout.write(text);
  if (opts.json) {
    writeFileSync(
      opts.json,
      JSON.stringify({ environment: env, options: opts, minutes, note, rows }, null, 2),
    );
    log(`results written to ${opts.json}`);
  }
}

async function main() {
  const env = await environment();
  const hardStop = setTimeout(() => {
    report(env, opts.maxMinutes, `; STOPPED by --max-minutes ${opts.maxMinutes}, incomplete`);
    process.stderr.write(`bench: --max-minutes ${opts.maxMinutes} reached, stopping\n`);
    process.exit(3); // the exit hook stops the service and nats-server children
  }, opts.maxMinutes * 60_000);
  hardStop.unref();
  log(
    `bench: ${Object.entries(env)
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n       ')}`,
  );
  const started = performance.now();
  let failed = false;
  const part = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (error) {
      failed = true;
      const message = error instanceof Error ? error.message : String(error);
      log(`${name} failed: ${message}`);
      rows.push({ scenario: `${name}: ERROR`, target: '—', result: message.split('\n')[0]!, met: 'no' });
      await stop().catch(() => undefined);
    }
  };
  const writes = new Set([...only].filter((p) => p === 'ingest' || p === 'create'));
  if (writes.size > 0) await part('PostgreSQL writes', () => pgWrites(writes, false));
  if (only.has('nats')) {
    await part('PostgreSQL + NATS writes', () =>
      pgWrites(writes.size > 0 ? writes : new Set(['ingest', 'create']), true),
    );
  }
  const suite: Suite = {
    duration: opts.duration,
    steadyRate: opts.steadyRate,
    rows,
    recreateDatabase,
    withDatabase: (fn) => withClient(benchUrl, fn),
    withBus,
    run: onPostgres,
    measure,
    waitForQuiet,
    cpuMeter: (svc) => {
      const meter = cpuMeter({ serviceCpu: () => svc.cpuSeconds(), busCpu, database: svc.database });
      return () => meter().cpu;
    },
    loadSummary,
    disturbedNote,
  };
  if (only.has('collector')) {
    await part('Frontend collector', () => collectorPart(suite, opts.collectorConnections));
  }
  if (only.has('lag')) await part('Relay lag', () => lagPart(suite));
  if (only.has('processing')) await part('Processing', () => processingPart(suite));
  if (only.has('delivery')) await part('Webhook delivery', () => deliveryPart(suite));
  if (only.has('projection')) await part('Projections', () => projectionPart(suite));
  if (only.has('rebuild')) await part('Rebuild', () => rebuildPart(suite));
  if (only.has('replay')) await part('Replay', () => replayPart(suite, benchUrl));
  if (only.has('query')) await part('PostgreSQL reads', pgReads);
  if (only.has('embedded')) await part('PGlite', embedded);
  const minutes = Math.round((performance.now() - started) / 6000) / 10;
  clearTimeout(hardStop);
  report(env, minutes);
  if (failed) process.exitCode = 1;
}

main()
  .catch((error: unknown) => {
    process.stderr.write(
      `bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  })
  .finally(() => stop().catch(() => undefined));
