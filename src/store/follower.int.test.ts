/**
 * A follower of the global order never skips an event that commits later with a lower position
 * (Marten #2370, Emmett PR #336), on real PostgreSQL with real concurrent transactions.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeCreate } from '../domain/event.js';
import { openTestDb, type OpenedDb } from '../test-support/db.js';
import type { Queryable } from './db.js';
import { EVENTS_SOURCE, lockPositionOrder, readNext } from './follower.js';
import { createEventStore, type EventStore } from './index.js';
import { createPgDb } from './pg.js';

const INSERT = `INSERT INTO event.events (event_id, event_type, event_source, event_category, "timestamp", content_hash)
  VALUES ($1, 'held.open', 'backend', 'system', now(), repeat('0', 64)) RETURNING position`;

/** What every writer does: the position-order lock, then the INSERT that draws the position. */
async function insertOne(tx: Queryable, id = randomUUID()): Promise<number> {
  await lockPositionOrder(tx, EVENTS_SOURCE);
  const row = await tx.query<{ position: number }>(INSERT, [id]);
  return row.rows[0]!.position;
}

describe('follower (postgres)', () => {
  let opened: OpenedDb;
  let store: EventStore;
  beforeAll(async () => {
    opened = await openTestDb('postgres');
    store = createEventStore(opened.db);
  });
  afterAll(async () => {
    await store.drain();
    await opened.close();
  });

  const appendOne = async (eventType: string) => {
    const normalized = normalizeCreate({ event_type: eventType }, 'body', () => new Date());
    if (!normalized.ok) throw new Error('invalid');
    const outcome = await store.append({ events: [normalized.event] });
    if (outcome.type !== 'appended') throw new Error('rejected');
    return outcome.events[0]!.event;
  };

  async function followAll(checkpoint: number): Promise<{ positions: number[]; checkpoint: number }> {
    const positions: number[] = [];
    for (;;) {
      const result = await readNext(opened.db, checkpoint, 100);
      positions.push(...result.events.map((e) => e.position));
      checkpoint = result.checkpoint;
      if (result.events.length === 0) return { positions, checkpoint };
    }
  }

  it('a writer cannot commit a higher position while a lower one is in flight; the follower sees both, in order', async () => {
    let { checkpoint } = await followAll(0);
    let bPromise: Promise<{ position: number }> | undefined;
    const a = await opened.db.withConnection(async (conn) => {
      await conn.query('BEGIN');
      const position = await insertOne(conn);
      // B tries to append meanwhile: it has to wait for A (it would otherwise commit position+1).
      bPromise = appendOne('committed.after.a');
      const raced = await Promise.race([
        bPromise.then(() => 'b committed'),
        new Promise((r) => setTimeout(() => r('b waits'), 300)),
      ]);
      expect(raced).toBe('b waits');
      for (let i = 0; i < 5; i++) {
        const result = await readNext(opened.db, checkpoint, 100);
        expect(result.events).toEqual([]);
        checkpoint = result.checkpoint;
      }
      await conn.query('COMMIT');
      return position;
    });
    const b = await bPromise!;
    expect(b.position).toBeGreaterThan(a);
    expect((await followAll(checkpoint)).positions).toEqual([a, b.position]);
  });

  it('a rolled-back position leaves a gap the follower passes at once', async () => {
    const { checkpoint } = await followAll(0);
    await opened.db.withConnection(async (conn) => {
      await conn.query('BEGIN');
      await insertOne(conn);
      await conn.query('ROLLBACK');
    });
    const b = await appendOne('after.rollback');
    expect((await followAll(checkpoint)).positions).toEqual([b.position]);
  });

  it('is not held back by a long transaction in another database of the cluster', async () => {
    const other = await openTestDb('postgres', 2);
    try {
      const { checkpoint } = await followAll(0);
      await other.db.withConnection(async (conn) => {
        await conn.query('BEGIN');
        await conn.query('SELECT pg_current_xact_id()');
        const b = await appendOne('while.other.db.busy');
        expect((await followAll(checkpoint)).positions).toEqual([b.position]);
        await conn.query('ROLLBACK');
      });
    } finally {
      await other.close();
    }
  });

  it('sees every event exactly once, in position order, while many writers commit concurrently', async () => {
    let { checkpoint } = await followAll(0);
    const writerDbs = [0, 1, 2].map(() =>
      createPgDb({ connectionString: opened.url!, poolSize: 4, statementTimeoutMs: 30_000 }),
    );
    const written: number[] = [];
    let done = false;
    const writers = writerDbs.map(async (db, w) => {
      for (let i = 0; i < 60; i++) {
        const position = await db.transaction(async (tx) => {
          // Some transactions do slow work before they draw a position, some hold it a while after.
          if ((i + w) % 3 === 0) await new Promise((r) => setTimeout(r, (i * 7) % 15));
          const p = await insertOne(tx, `w${w}-${i}-${randomUUID()}`);
          if ((i + w) % 4 === 0) await new Promise((r) => setTimeout(r, 5 + ((i * 7) % 20)));
          return p;
        });
        written.push(position);
      }
    });
    const seen: number[] = [];
    const follower = (async () => {
      while (!done) {
        const result = await readNext(opened.db, checkpoint, 50);
        seen.push(...result.events.map((e) => e.position));
        checkpoint = result.checkpoint;
        if (result.events.length === 0) await new Promise((r) => setTimeout(r, 2));
      }
    })();
    await Promise.all(writers);
    done = true;
    await follower;
    seen.push(...(await followAll(checkpoint)).positions);
    await Promise.all(writerDbs.map((db) => db.close()));
    expect(seen).toEqual([...written].sort((a, b) => a - b));
  });
});
