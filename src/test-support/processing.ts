/** Helpers for processing tests: register processors, wait for events to settle, check rollups. */
import { expect } from 'vitest';
import type { TestApp } from './app.js';
import { get, post, type EventJson } from './http.js';
import { waitFor } from './wait.js';

export interface ResultJson {
  processor_name: string;
  processor_id: string;
  status: string;
  message: string | null;
  duration_ms: number;
  attempt: number;
}

export async function registerProcessor(
  t: TestApp,
  body: Record<string, unknown>,
): Promise<{ processor_id: string }> {
  const res = await post(t, '/api/v1/events/processors', body);
  expect(res.statusCode, res.body).toBe(201);
  return res.json<{ processor_id: string }>();
}

/** Waits until the event is processed or failed, and returns it. */
export async function settled(t: TestApp, eventId: string, timeoutMs = 20_000): Promise<EventJson> {
  return waitFor(
    `event ${eventId} processed`,
    async () => {
      const event = (await get(t, `/api/v1/events/${encodeURIComponent(eventId)}`)).json<EventJson>();
      return event.status === 'processed' || event.status === 'failed' ? event : undefined;
    },
    timeoutMs,
  );
}

export async function results(t: TestApp, eventId: string): Promise<ResultJson[]> {
  const res = await get(t, `/api/v1/events/${encodeURIComponent(eventId)}/results`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ results: ResultJson[] }>().results;
}

/** The rollups agree with the events table, status by status, and in processing-time counts. */
export async function expectRollupsConsistent(t: TestApp): Promise<void> {
  for (const table of ['stats_hourly', 'stats_daily']) {
    const rollup = await t.db.query<{ status: string; n: number }>(
      `SELECT status, sum(event_count)::bigint AS n FROM event.${table} GROUP BY status HAVING sum(event_count) <> 0 ORDER BY status`,
    );
    const raw = await t.db.query<{ status: string; n: number }>(
      'SELECT status, count(*)::bigint AS n FROM event.events_current GROUP BY status ORDER BY status',
    );
    expect(
      rollup.rows.map((r) => [r.status, Number(r.n)]),
      table,
    ).toEqual(raw.rows.map((r) => [r.status, Number(r.n)]));
    const timed = await t.db.query<{ n: number }>(
      `SELECT coalesce(sum(processing_count), 0)::bigint AS n FROM event.${table}`,
    );
    const processed = raw.rows.find((r) => r.status === 'processed');
    expect(Number(timed.rows[0]!.n), `${table} processing_count`).toBe(Number(processed?.n ?? 0));
  }
}
