/** Runs the event service as a child process for the benchmarks, and stops it whatever happens. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The admin API key every bench service is started with (`ADMIN_API_KEY`); requests send
 * `svc.authorization`, which is this key's header unless `credential: 'key'`.
 */
export const BENCH_ADMIN_KEY = 'bench-admin-key-0123456789abcdef0123456789abcdef';

/**
 * Which credential the load sends: `admin` = the environment's admin key (a hash compared in
 * memory); `key` = an API key of the database with events:read and events:write, created at start
 * (verified once, then from the service's key cache; the per-credential rate limit turned off).
 */
export type BenchCredential = 'admin' | 'key';

/** The admin key's header: set-up and admin calls send it whatever the load's credential. */
export const ADMIN_AUTHORIZATION = `Bearer ${BENCH_ADMIN_KEY}`;

export interface ServiceOptions {
  /** PostgreSQL URL; undefined = embedded PGlite in dataDir. */
  databaseUrl?: string;
  dataDir?: string;
  logLevel: string;
  /** Run dist/src/main.js (after `npm run build`) instead of src/main.ts through tsx. */
  built: boolean;
  extraEnv?: Record<string, string>;
  startTimeoutMs?: number;
  /** Default `admin`. */
  credential?: BenchCredential;
}

export interface RunningService {
  readonly url: string;
  /** The PostgreSQL database it uses; undefined for the embedded store. */
  readonly database: string | undefined;
  readonly pid: number;
  /** The `Authorization` header value every request to it sends. */
  readonly authorization: string;
  /** CPU seconds (user + system) the service process has used so far. */
  cpuSeconds(): number;
  /** The last lines the service wrote (for error reports). */
  output(): string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/** A temporary directory removed when this process exits, however it exits. */
export function removeOnExit(dir: string): string {
  installExitHooks();
  tempDirs.add(dir);
  return dir;
}
let hooksInstalled = false;

/** Registers a child process that must not outlive this one. */
export function track(child: ChildProcess): void {
  installExitHooks();
  running.add(child);
  child.once('exit', () => running.delete(child));
}

/** Last resort: whatever way this process ends, no service child outlives it. */
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping the service\n`);
      for (const child of running) child.kill('SIGKILL');
      process.exit(130);
    });
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of /proc/<pid>/stat (here 0-based 11 and 12), in clock ticks.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

export async function startService(options: ServiceOptions): Promise<RunningService> {
  installExitHooks();
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: options.logLevel,
    NODE_ENV: 'production',
    ADMIN_API_KEY: BENCH_ADMIN_KEY,
    ...(options.credential === 'key' ? { RATE_LIMIT_PER_MINUTE: '0' } : {}),
    ...options.extraEnv,
  };
  delete env.DATABASE_URL;
  delete env.DATA_DIR;
  if (options.databaseUrl) env.DATABASE_URL = options.databaseUrl;
  if (options.dataDir) env.DATA_DIR = options.dataDir;
  // BENCH_SERVICE_NODE_ARGS: extra node flags for the service only (e.g. `--cpu-prof
  // --cpu-prof-dir=/tmp/prof`, which NODE_OPTIONS refuses).
  const nodeArgs = (process.env.BENCH_SERVICE_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const args = options.built
    ? [...nodeArgs, join(ROOT, 'dist/src/main.js')]
    : [...nodeArgs, '--import', 'tsx', join(ROOT, 'src/main.ts')];
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (lines.length > 40) lines.splice(0, lines.length - 40);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );

  const url = `http://127.0.0.1:${port}`;
  const service: RunningService = {
    url,
    authorization: ADMIN_AUTHORIZATION,
    database: options.databaseUrl ? new URL(options.databaseUrl).pathname.slice(1) : undefined,
    pid: child.pid!,
    cpuSeconds: () => processCpuSeconds(child.pid!),
    output: () => lines.join('\n'),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 120_000);
  let early: number | null | undefined;
  void exited.then((code) => (early = code));
  while (Date.now() < deadline) {
    if (early !== undefined)
      throw new Error(`the service exited (code ${early}) at start:\n${service.output()}`);
    try {
      const response = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(2_000) });
      if (response.ok)
        return options.credential === 'key' ? { ...service, authorization: await createKey(url) } : service;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await service.stop();
  throw new Error(`the service did not become ready in time:\n${service.output()}`);
}

/** A database API key for the load (`credential: 'key'`): its `Authorization` header value. */
async function createKey(url: string): Promise<string> {
  const response = await fetch(`${url}/api/v1/auth/keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: ADMIN_AUTHORIZATION },
    body: JSON.stringify({ name: 'bench', scopes: ['events:read', 'events:write'] }),
    signal: AbortSignal.timeout(10_000),
  });
  if (response.status !== 201) throw new Error(`creating the bench API key: HTTP ${response.status}`);
  return `Bearer ${((await response.json()) as { key: string }).key}`;
}
