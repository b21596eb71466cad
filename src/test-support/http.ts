/**
 * Small helpers for integration tests that speak HTTP to the app through `inject`. They speak as
 * the admin (`TEST_ADMIN_API_KEY`) unless `headers` sets `authorization`: the test app's `inject`
 * adds the header (test-support/app.ts).
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { TestApp } from './app.js';

/** An event as the API returns it (JSON: dates are strings). */
export interface EventJson {
  event_id: string;
  event_type: string;
  event_source: string;
  event_category: string;
  user_id: string | null;
  session_id: string | null;
  organization_id: string | null;
  device_id: string | null;
  correlation_id: string | null;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  context: Record<string, unknown> | null;
  properties: Record<string, unknown> | null;
  status: string;
  processed_at: string | null;
  processors: string[];
  error_message: string | null;
  retry_count: number;
  timestamp: string;
  created_at: string;
  updated_at: string;
  version: string;
  schema_version: string;
  position: number;
  stream_id: string | null;
  entity_type: string | null;
  entity_id: string | null;
  stream_version: number | null;
  idempotency_key: string | null;
}

export interface EventListJson {
  events: EventJson[];
  total: number | null;
  limit: number;
  offset: number;
  has_more: boolean;
  next_cursor: string | null;
}

export interface ErrorJson {
  detail: string;
  code: string;
  errors?: { path: string; message: string }[];
  [extra: string]: unknown;
}

/** A short random id, unique per call: tests in one file share a database. */
export function uid(prefix = 'id'): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

export function post(
  t: TestApp,
  url: string,
  payload: unknown,
  headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  return t.app.http.inject({
    method: 'POST',
    url,
    payload: JSON.stringify(payload),
    headers: { 'content-type': 'application/json', ...headers },
  });
}

export function get(
  t: TestApp,
  url: string,
  headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  return t.app.http.inject({ method: 'GET', url, headers });
}

/** Creates one event and expects 201. */
export async function createEvent(t: TestApp, body: Record<string, unknown>): Promise<EventJson> {
  const res = await post(t, '/api/v1/events/create', body);
  expect(res.statusCode, res.body).toBe(201);
  return res.json<EventJson>();
}

/** Creates events with an atomic batch (in chunks of `chunk`) and expects 201. */
export async function createEvents(
  t: TestApp,
  bodies: Record<string, unknown>[],
  chunk = 500,
): Promise<EventJson[]> {
  const out: EventJson[] = [];
  for (let i = 0; i < bodies.length; i += chunk) {
    const res = await post(t, '/api/v1/events/batch', bodies.slice(i, i + chunk));
    expect(res.statusCode, res.body).toBe(201);
    out.push(...res.json<EventJson[]>());
  }
  return out;
}

/** POST /api/v1/events/query, expecting 200. */
export async function queryEvents(t: TestApp, body: Record<string, unknown>): Promise<EventListJson> {
  const res = await post(t, '/api/v1/events/query', body);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<EventListJson>();
}

/** Expects a 422 and returns the paths it names. */
export function validationPaths(res: LightMyRequestResponse): string[] {
  expect(res.statusCode, res.body).toBe(422);
  const body = res.json<ErrorJson>();
  expect(body.code).toBe('validation_failed');
  expect(typeof body.detail).toBe('string');
  return (body.errors ?? []).map((e) => e.path);
}

/** Newest first, as the query endpoint orders: timestamp, then position, both descending. */
export function newestFirst(a: EventJson, b: EventJson): number {
  const dt = Date.parse(b.timestamp) - Date.parse(a.timestamp);
  return dt !== 0 ? dt : b.position - a.position;
}

/** A deterministic pseudo-random generator (mulberry32), so failures can be reproduced. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Matches stack trace lines such as `    at foo (/x/y.ts:1:2)`, raw or escaped inside JSON. */
export const STACK_TRACE = /(\n|\\n)\s*at\s|\S+\.[cm]?[jt]s:\d+:\d+/;
