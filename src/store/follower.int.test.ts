/**
 * A follower of the global order never skips an event that commits later with a lower position
 * (Marten #2370, Emmett PR #336), on real PostgreSQL with real concurrent transactions.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeCreate } from '../domain/event.js';
import { openTestDb, type OpenedDb } from '../test-support/db.js';
import { readNext, type FollowState } from './follower.js';
import { createEventStore, type EventStore } from './index.js';
import { createPgDb } from './pg.js';

const INSERT = `INSERT INTO event.events (event_id, event_type, event_source, event_category, "timestamp", content_hash)
  VALUES ($1, 'held.open', 'backend', 'system', now(), repeat('0', 64)) RETURNING position`;

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

  /** Follows until caught up: nothing new and nothing held back by running transactions. */
  async function followAll(state: FollowState): Promise<{ positions: number[]; state: FollowState }> {
    const positions: number[] = [];
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const result = await readNext(opened.db, state, 100);
      positions.push(...result.events.map((e) => e.position));
      state = result.state;
      if (result.events.length === 0 && !result.waiting) return { positions, state };
      // Other test files share the cluster: their open transactions hold the horizon back a moment.
      if (result.waiting) await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error('follower did not catch up within 10 s');
  }

  it('waits for a lower position that is still in flight, then delivers it before the higher one', async () => {
    let state: FollowState = (await followAll({ checkpoint: 0, horizon: null })).state;
    // Transaction A draws a position and stays open (as a slow writer would).
    const held = await opened.db.withConnection(async (conn) => {
      await conn.query('BEGIN');
      await conn.query('SELECT pg_current_xact_id()');
      const a = await conn.query<{ position: number }>(INSERT, [randomUUID()]);
      // B commits meanwhile with a higher position.
      const b = await appendOne('committed.later.position');
      expect(b.position).toBeGreaterThan(a.rows[0]!.position);
      // The follower must not pass A's position while A is open, however often it looks.
      for (let i = 0; i < 20; i++) {
        const result = await readNext(opened.db, state, 100);
        expect(result.events.map((e) => e.position)).not.toContain(b.position);
        expect(result.state.checkpoint).toBeLessThan(a.rows[0]!.position);
        state = result.state;
      }
      await conn.query('COMMIT');
      return { a: a.rows[0]!.position, b: b.position };
    });
    const after = await followAll(state);
    expect(after.positions).toEqual([held.a, held.b].sort((x, y) => x - y));
  });

  it('skips the position of a rolled-back transaction once it has ended', async () => {
    const { state } = await followAll({ checkpoint: 0, horizon: null });
    await opened.db.withConnection(async (conn) => {
      await conn.query('BEGIN');
      await conn.query('SELECT pg_current_xact_id()');
      await conn.query(INSERT, [randomUUID()]);
      await conn.query('ROLLBACK');
    });
    const b = await appendOne('after.rollback');
    const after = await followAll(state);
    expect(after.positions).toEqual([b.position]);
  });

  it('sees every event exactly once, in position order, while many writers commit concurrently', async () => {
    let state = (await followAll({ checkpoint: 0, horizon: null })).state;
    const writerDbs = [0, 1, 2].map(() =>
      createPgDb({ connectionString: opened.url!, poolSize: 4, statementTimeoutMs: 30_000 }),
    );
    const written: number[] = [];
    let done = false;
    const writers = writerDbs.map(async (db, w) => {
      for (let i = 0; i < 60; i++) {
        const position = await db.transaction(async (tx) => {
          await tx.query('SELECT pg_current_xact_id()');
          const row = await tx.query<{ position: number }>(INSERT, [`w${w}-${i}-${randomUUID()}`]);
          // Hold some transactions open for a while so that commits overtake each other.
          if ((i + w) % 4 === 0) await new Promise((r) => setTimeout(r, 5 + ((i * 7) % 20)));
          return row.rows[0]!.position;
        });
        written.push(position);
      }
    });
    const seen: number[] = [];
    const follower = (async () => {
      while (!done) {
        const result = await readNext(opened.db, state, 50);
        seen.push(...result.events.map((e) => e.position));
        state = result.state;
        if (result.events.length === 0) await new Promise((r) => setTimeout(r, 2));
      }
    })();
    await Promise.all(writers);
    done = true;
    await follower;
    seen.push(...(await followAll(state)).positions);
    await Promise.all(writerDbs.map((db) => db.close()));
    expect(seen).toEqual([...written].sort((a, b) => a - b));
  });
});
