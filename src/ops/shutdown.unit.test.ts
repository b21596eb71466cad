import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createShutdown, type ShutdownStep } from './shutdown.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

const never = () => new Promise<void>(() => {});

describe('the shutdown sequence', () => {
  it('runs the steps in order, each with the deadline, and exits 0', async () => {
    const { logger } = capture();
    const ran: string[] = [];
    const deadlines: number[] = [];
    const step = (name: string): ShutdownStep => ({
      name,
      run: async (deadline) => {
        ran.push(name);
        deadlines.push(deadline);
        await new Promise((r) => setTimeout(r, 5));
      },
    });
    const codes: number[] = [];
    const before = Date.now();
    const shutdown = createShutdown({
      steps: [step('a'), step('b'), step('c')],
      timeoutMs: 5000,
      logger,
      exit: (code) => codes.push(code),
    });
    shutdown.begin('SIGTERM');
    expect(await shutdown.exited).toBe(0);
    expect(ran).toEqual(['a', 'b', 'c']);
    expect(new Set(deadlines).size).toBe(1);
    expect(deadlines[0]).toBeGreaterThanOrEqual(before + 5000);
    expect(codes).toEqual([0]);
  });

  it('goes on after a failed step, then exits 1', async () => {
    const { logger, lines } = capture();
    const ran: string[] = [];
    const shutdown = createShutdown({
      steps: [
        {
          name: 'bus',
          run: () => {
            throw new Error('connection gone');
          },
        },
        { name: 'db', run: () => void ran.push('db') },
      ],
      timeoutMs: 5000,
      logger,
      exit: () => {},
    });
    shutdown.begin('SIGINT');
    expect(await shutdown.exited).toBe(1);
    expect(ran).toEqual(['db']);
    expect(lines.find((line) => line.step === 'bus' && line.level === 50)).toMatchObject({
      err: { message: 'connection gone' },
    });
  });

  it('exits 1 at the deadline, logging the step in progress, what it waits for and what did not run', async () => {
    const { logger, lines } = capture();
    const ran: string[] = [];
    const codes: number[] = [];
    const shutdown = createShutdown({
      steps: [
        { name: 'http', run: never, pending: () => ({ requests_in_flight: 1 }) },
        { name: 'db', run: () => void ran.push('db') },
      ],
      timeoutMs: 100,
      logger,
      exit: (code) => codes.push(code),
    });
    const started = Date.now();
    shutdown.begin('SIGTERM');
    expect(await shutdown.exited).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(ran).toEqual([]);
    expect(codes).toEqual([1]);
    expect(
      lines.find((line) => line.msg === 'shutdown timed out; exiting with work still pending'),
    ).toMatchObject({
      step: 'http',
      pending: { requests_in_flight: 1 },
      not_run: ['db'],
      timeout_ms: 100,
    });
  });

  it('exits at once on a second signal, with 128 + its number', async () => {
    const { logger } = capture();
    const codes: number[] = [];
    const shutdown = createShutdown({
      steps: [{ name: 'http', run: never }],
      timeoutMs: 60_000,
      logger,
      exit: (code) => codes.push(code),
    });
    shutdown.begin('SIGTERM');
    shutdown.begin('SIGINT');
    expect(await shutdown.exited).toBe(130);
    shutdown.begin('SIGTERM');
    expect(codes).toEqual([130]);
  });
});
