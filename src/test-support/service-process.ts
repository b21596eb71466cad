/**
 * The service as a real child process (`node --import tsx src/main.ts`), for tests that kill it
 * with SIGKILL or stop it with SIGTERM mid-work. It is configured with `ADMIN_API_KEY` =
 * `TEST_ADMIN_API_KEY` unless `env` says otherwise (an empty string unsets it): requests send
 * `ADMIN_AUTH_HEADER` (test-support/app.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { TEST_ADMIN_API_KEY } from './app.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface ExitInfo {
  /** null when a signal ended the process. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** When it exited (ms since epoch). */
  at: number;
}

export class ServiceProcess {
  private child: ChildProcess | null = null;
  private exit: Promise<ExitInfo> | null = null;
  output = '';

  private constructor(
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {}

  static async start(env: Record<string, string>): Promise<ServiceProcess> {
    const service = new ServiceProcess(await freePort(), env);
    await service.start();
    return service;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: {
        ...process.env,
        LOG_LEVEL: 'warn',
        HOST: '127.0.0.1',
        ADMIN_API_KEY: TEST_ADMIN_API_KEY,
        ...this.env,
        PORT: String(this.port),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.exit = new Promise((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
    );
    child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`service exited at start-up:\n${this.output}`);
      try {
        const res = await fetch(`${this.url}/health`);
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`service did not start:\n${this.output}`);
  }

  /** Sends a signal and returns at once (`exited()` tells when and how the process ended). */
  signal(signal: NodeJS.Signals): void {
    this.child?.kill(signal);
  }

  /** Resolves once the process started last has exited. */
  exited(): Promise<ExitInfo> {
    if (!this.exit) throw new Error('the service was never started');
    return this.exit;
  }

  /** Stops the process: SIGKILL (no chance to clean up) or SIGTERM (graceful). */
  async stop(signal: 'SIGKILL' | 'SIGTERM' = 'SIGTERM'): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null) return child?.exitCode ?? null;
    this.child = null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill(signal);
    return exited;
  }
}
