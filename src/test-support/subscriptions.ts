/** Helpers for tests of webhook subscriptions and their deliveries, over inject or a real port. */
import { expect } from 'vitest';
import { ADMIN_AUTH_HEADER, type TestApp } from './app.js';
import { uid } from './http.js';

export const SUBSCRIPTIONS = '/api/v1/events/subscriptions';

export interface AttemptJson {
  attempt_number: number;
  status: 'delivered' | 'retry' | 'failed';
  response_status: number | null;
  response_body: string | null;
  error: string | null;
  duration_ms: number;
  attempted_at: string;
  next_attempt_at: string | null;
}

export interface DeliveryJson {
  delivery_id: string;
  subscription_id: string;
  event_id: string;
  event_type: string | null;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  in_flight: boolean;
  next_attempt_at: string | null;
  last_response_status: number | null;
  last_error: string | null;
  delivered_at: string | null;
  attempt_log: AttemptJson[];
}

export interface CreatedSubscription {
  subscription_id: string;
  webhook_secret: string;
  enabled: boolean;
  disabled_reason: string | null;
}

/** Speaks HTTP to one service, through inject (a TestApp) or fetch (a base URL). */
export interface Api {
  call(method: string, url: string, body?: unknown): Promise<{ status: number; json: unknown; text: string }>;
}

export function apiOf(target: TestApp | string): Api {
  return {
    async call(method, url, body) {
      if (typeof target === 'string') {
        const res = await fetch(`${target}${url}`, {
          method,
          headers: {
            ...ADMIN_AUTH_HEADER,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await res.text();
        return { status: res.status, text, json: text ? (JSON.parse(text) as unknown) : null };
      }
      const res = await target.app.http.inject({
        method: method as 'GET',
        url,
        ...(body === undefined
          ? {}
          : { payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      });
      return { status: res.statusCode, text: res.body, json: res.body ? res.json<unknown>() : null };
    },
  };
}

export async function createSubscription(
  api: Api,
  callbackUrl: string,
  body: Record<string, unknown> = {},
): Promise<CreatedSubscription> {
  const res = await api.call('POST', SUBSCRIPTIONS, {
    subscriber_name: uid('sub'),
    event_types: ['>'],
    callback_url: callbackUrl,
    ...body,
  });
  expect(res.status, res.text).toBe(201);
  return res.json as CreatedSubscription;
}

export async function listDeliveries(
  api: Api,
  subscriptionId: string,
  query = 'limit=1000',
): Promise<DeliveryJson[]> {
  const res = await api.call('GET', `${SUBSCRIPTIONS}/${subscriptionId}/deliveries?${query}`);
  expect(res.status, res.text).toBe(200);
  return (res.json as { deliveries: DeliveryJson[] }).deliveries;
}

export async function getSubscriptionJson(api: Api, subscriptionId: string): Promise<CreatedSubscription> {
  const res = await api.call('GET', `${SUBSCRIPTIONS}/${subscriptionId}`);
  expect(res.status, res.text).toBe(200);
  return res.json as CreatedSubscription;
}

export async function createEventVia(api: Api, body: Record<string, unknown>): Promise<{ event_id: string }> {
  const res = await api.call('POST', '/api/v1/events/create', body);
  expect(res.status, res.text).toBe(201);
  return res.json as { event_id: string };
}

export async function createEventsVia(api: Api, bodies: Record<string, unknown>[]): Promise<string[]> {
  const res = await api.call('POST', '/api/v1/events/batch', bodies);
  expect(res.status, res.text).toBe(201);
  return (res.json as { event_id: string }[]).map((e) => e.event_id);
}
