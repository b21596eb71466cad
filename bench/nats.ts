/** A private NATS server with JetStream for the benchmarks (never the shared one other programs use). */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, processCpuSeconds, removeOnExit, track } from './service.js';

export interface RunningNats {
  url: string;
  /** CPU seconds the nats-server process has used so far. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

function findBinary(): string | undefined {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/local/bin', '/usr/bin']);
  return dirs.map((dir) => join(dir, 'nats-server')).find((file) => existsSync(file));
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Starts nats-server -js on a free port with its store in a temporary directory. */
export async function startNats(): Promise<RunningNats> {
  const binary = findBinary();
  if (!binary)
    throw new Error('nats-server not found (PATH, /usr/sbin): install it or leave out the nats part');
  const port = await freePort();
  const dir = removeOnExit(mkdtempSync(join(tmpdir(), 'event-bench-nats-')));
  const child = spawn(binary, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  track(child);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-2000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    if (await portOpen(port)) {
      return { url: `nats://127.0.0.1:${port}`, cpuSeconds: () => processCpuSeconds(child.pid!), stop };
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stop();
  throw new Error(`nats-server did not start:\n${stderr}`);
}
