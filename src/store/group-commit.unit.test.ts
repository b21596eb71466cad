import { describe, expect, it } from 'vitest';
import { GroupCommitter } from './group-commit.js';

describe('GroupCommitter', () => {
  it('starts at once when idle and groups what arrives while a group is in flight', async () => {
    const groups: number[][] = [];
    let release!: () => void;
    let first = true;
    const committer = new GroupCommitter<number, number>(
      async (items) => {
        groups.push(items);
        if (first) {
          first = false;
          await new Promise<void>((r) => (release = r));
        }
        return items.map((i) => i * 10);
      },
      { maxInFlight: 1, maxGroupWeight: 100, weight: () => 1 },
    );
    const a = committer.submit(1);
    const rest = [2, 3, 4].map((i) => committer.submit(i));
    expect(groups).toEqual([[1]]);
    release();
    expect(await a).toBe(10);
    expect(await Promise.all(rest)).toEqual([20, 30, 40]);
    expect(groups).toEqual([[1], [2, 3, 4]]);
    await committer.drain();
  });

  it('respects the group weight and rejects a failed group only', async () => {
    const groups: number[][] = [];
    const committer = new GroupCommitter<number, number>(
      async (items) => {
        groups.push(items);
        if (items.includes(13)) throw new Error('boom');
        return items;
      },
      { maxInFlight: 1, maxGroupWeight: 5, weight: (i) => i },
    );
    const results = await Promise.allSettled([3, 2, 4, 13, 1].map((i) => committer.submit(i)));
    expect(groups[0]).toEqual([3]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    await committer.drain();
  });

  it('starts a second group beside the first only when enough weight is queued', async () => {
    const started: number[][] = [];
    const releases: (() => void)[] = [];
    const committer = new GroupCommitter<number, number>(
      async (items) => {
        started.push(items);
        await new Promise<void>((r) => releases.push(r));
        return items;
      },
      { maxInFlight: 2, maxGroupWeight: 100, weight: (i) => i, parallelWeight: 10 },
    );
    const all = [committer.submit(1), committer.submit(2), committer.submit(3)];
    expect(started).toEqual([[1]]); // 5 queued: below 10, the small ones wait
    all.push(committer.submit(6));
    expect(started).toEqual([[1], [2, 3, 6]]); // 11 queued: a second group starts
    all.push(committer.submit(4));
    expect(started).toHaveLength(2); // two in flight at most
    releases[0]!();
    await all[0];
    expect(started).toHaveLength(2); // one in flight, 4 queued: below 10, it waits
    releases[1]!();
    await all[1];
    expect(started[2]).toEqual([4]);
    releases[2]!();
    expect(await Promise.all(all)).toEqual([1, 2, 3, 6, 4]);
    await committer.drain();
  });
});
