/** Runs the event service as a child process for the benchmarks, and stops it whatever happens. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface ServiceOptions {
  /** PostgreSQL URL; undefined = embedded PGlite in dataDir. */
  databaseUrl?: string;
  dataDir?: string;
  logLevel: string;
  /** Run dist/src/main.js (after `npm run build`) instead of src/main.ts through tsx. */
  built: boolean;
  extraEnv?: Record<string, string>;
  startTimeoutMs?: number;
}

export interface RunningService {
  readonly url: string;
  /** The PostgreSQL database it uses; undefined for the embedded store. */
  readonly database: string | undefined;
  readonly pid: number;
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
    ...options.extraEnv,
  };
  delete env.DATABASE_URL;
  delete env.DATA_DIR;
  if (options.databaseUrl) env.DATABASE_URL = options.databaseUrl;
  if (options.dataDir) env.DATA_DIR = options.dataDir;
  const args = options.built
    ? [join(ROOT, 'dist/src/main.js')]
    : ['--import', 'tsx', join(ROOT, 'src/main.ts')];
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
      if (response.ok) return service;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await service.stop();
  throw new Error(`the service did not become ready in time:\n${service.output()}`);
}
