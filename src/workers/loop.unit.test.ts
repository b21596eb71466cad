import { describe, expect, it } from 'vitest';
import { startLoop } from './loop.js';

describe('startLoop', () => {
  it('a poke during an iteration runs the next one at once; errors back off and never escape', async () => {
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const loop = startLoop({
      name: 't',
      idleMs: 60_000,
      iterate: async () => {
        runs++;
        if (runs === 1) await gate;
        if (runs === 3) throw new Error('boom');
        return 'idle';
      },
    });
    await new Promise((r) => setTimeout(r, 10));
    loop.poke(); // while iteration 1 is in flight
    release();
    const deadline = Date.now() + 2000;
    while (runs < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(runs).toBe(2);
    await loop.stop();
  });
});
