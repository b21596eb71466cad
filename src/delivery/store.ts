/**
 * SQL of webhook subscriptions, their deliveries and the attempt log. The only module of the
 * delivery capability that speaks SQL; every value is a parameter, every identifier a constant.
 */
import type { Db, Queryable } from '../store/db.js';
import { EVENTS_SOURCE, lockPositionOrder } from '../store/follower.js';
import { enqueueOutbox, type OutboxMessage } from '../store/outbox.js';
import { deliverableColumns, type DeliverableEvent } from './payload.js';
import type { RetryPolicy } from './retry.js';

export const DeliveryStatus = {
  PENDING: 'pending',
  DELIVERED: 'delivered',
  FAILED: 'failed',
} as const;
export type DeliveryStatus = (typeof DeliveryStatus)[keyof typeof DeliveryStatus];

export const AttemptStatus = {
  DELIVERED: 'delivered',
  RETRY: 'retry',
  FAILED: 'failed',
} as const;
export type AttemptStatus = (typeof AttemptStatus)[keyof typeof AttemptStatus];

/** A subscription as stored, without its secret. */
export interface SubscriptionRow {
  subscription_id: string;
  subscriber_name: string;
  subscriber_type: string;
  description: string | null;
  event_types: string[];
  event_sources: string[] | null;
  event_categories: string[] | null;
  callback_url: string;
  enabled: boolean;
  retry_policy: RetryPolicy;
  disabled_reason: string | null;
  disabled_at: Date | null;
  failing_since: Date | null;
  consecutive_failures: number;
  start_position: number;
  created_at: Date;
  updated_at: Date;
}

/** Never `webhook_secret`: it leaves the database only to sign. */
const SUBSCRIPTION_COLUMNS = `subscription_id, subscriber_name, subscriber_type, description, event_types,
  event_sources, event_categories, callback_url, enabled, retry_policy, disabled_reason, disabled_at,
  failing_since, consecutive_failures, start_position, created_at, updated_at`;

export interface NewSubscription {
  subscription_id: string;
  subscriber_name: string;
  subscriber_type: string;
  description: string | null;
  event_types: string[];
  event_sources: string[] | null;
  event_categories: string[] | null;
  callback_url: string;
  webhook_secret: string;
  enabled: boolean;
  retry_policy: RetryPolicy;
}

/**
 * Stores a subscription and its announcement (outbox) in one transaction. Its start position is
 * read last, holding the lock under which appends draw positions (store/follower.ts): every event
 * at or below it is already visible, every later one is drawn after this commit, so the fan-out
 * (which reads events, then subscriptions) never misses an event this subscription should get.
 */
export async function insertSubscription(
  db: Db,
  subscription: NewSubscription,
  announcement: OutboxMessage,
): Promise<SubscriptionRow> {
  return db.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO event.event_subscriptions (subscription_id, subscriber_name, subscriber_type, description,
         event_types, event_sources, event_categories, callback_url, webhook_secret, enabled, retry_policy,
         disabled_at, disabled_reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb,
         CASE WHEN $10 THEN NULL ELSE now() END, CASE WHEN $10 THEN NULL ELSE 'created disabled' END)`,
      [
        subscription.subscription_id,
        subscription.subscriber_name,
        subscription.subscriber_type,
        subscription.description,
        subscription.event_types,
        subscription.event_sources,
        subscription.event_categories,
        subscription.callback_url,
        subscription.webhook_secret,
        subscription.enabled,
        JSON.stringify(subscription.retry_policy),
      ],
    );
    await enqueueOutbox(tx, [announcement]);
    await lockPositionOrder(tx, EVENTS_SOURCE);
    const result = await tx.query<SubscriptionRow>(
      `UPDATE event.event_subscriptions
       SET start_position = (SELECT coalesce(max(position), 0) FROM event.events)
       WHERE subscription_id = $1 RETURNING ${SUBSCRIPTION_COLUMNS}`,
      [subscription.subscription_id],
    );
    return result.rows[0]!;
  });
}

export async function listSubscriptions(
  db: Queryable,
  filter: { enabled?: boolean } = {},
): Promise<SubscriptionRow[]> {
  const result = await db.query<SubscriptionRow>(
    `SELECT ${SUBSCRIPTION_COLUMNS} FROM event.event_subscriptions
     WHERE ($1::boolean IS NULL OR enabled = $1) ORDER BY created_at, subscription_id`,
    [filter.enabled ?? null],
  );
  return result.rows;
}

export async function getSubscription(db: Queryable, id: string): Promise<SubscriptionRow | null> {
  const result = await db.query<SubscriptionRow>(
    `SELECT ${SUBSCRIPTION_COLUMNS} FROM event.event_subscriptions WHERE subscription_id = $1`,
    [id],
  );
  return result.rows[0] ?? null;
}

/** What an update may change (the enabled flag has its own function). */
export interface SubscriptionPatch {
  subscriber_name?: string;
  subscriber_type?: string;
  description?: string | null;
  event_types?: string[];
  event_sources?: string[] | null;
  event_categories?: string[] | null;
  callback_url?: string;
  webhook_secret?: string;
  retry_policy?: RetryPolicy;
}

const PATCH_COLUMNS: Record<keyof SubscriptionPatch, { column: string; cast?: string }> = {
  subscriber_name: { column: 'subscriber_name' },
  subscriber_type: { column: 'subscriber_type' },
  description: { column: 'description' },
  event_types: { column: 'event_types', cast: 'text[]' },
  event_sources: { column: 'event_sources', cast: 'text[]' },
  event_categories: { column: 'event_categories', cast: 'text[]' },
  callback_url: { column: 'callback_url' },
  webhook_secret: { column: 'webhook_secret' },
  retry_policy: { column: 'retry_policy', cast: 'jsonb' },
};

export async function updateSubscription(
  db: Queryable,
  id: string,
  patch: SubscriptionPatch,
): Promise<SubscriptionRow | null> {
  const sets: string[] = [];
  const params: unknown[] = [id];
  for (const [key, spec] of Object.entries(PATCH_COLUMNS) as [
    keyof SubscriptionPatch,
    { column: string; cast?: string },
  ][]) {
    const value = patch[key];
    if (value === undefined) continue;
    params.push(key === 'retry_policy' ? JSON.stringify(value) : value);
    sets.push(`${spec.column} = $${params.length}${spec.cast ? `::${spec.cast}` : ''}`);
  }
  if (sets.length === 0) return getSubscription(db, id);
  const result = await db.query<SubscriptionRow>(
    `UPDATE event.event_subscriptions SET ${sets.join(', ')}, updated_at = now()
     WHERE subscription_id = $1 RETURNING ${SUBSCRIPTION_COLUMNS}`,
    params,
  );
  return result.rows[0] ?? null;
}

/**
 * Enables (clearing the failure state and the reason) or disables (recording why). Runs alone in
 * its transaction and touches no delivery row, so claims (which hold delivery rows, then ask for
 * the subscription row) cannot deadlock with it.
 */
export async function setSubscriptionEnabled(
  db: Queryable,
  id: string,
  enabled: boolean,
  reason: string | null,
): Promise<SubscriptionRow | null> {
  const result = await db.query<SubscriptionRow>(
    enabled
      ? `UPDATE event.event_subscriptions
         SET enabled = true, disabled_reason = NULL, disabled_at = NULL, failing_since = NULL,
             consecutive_failures = 0, updated_at = now()
         WHERE subscription_id = $1 RETURNING ${SUBSCRIPTION_COLUMNS}`
      : `UPDATE event.event_subscriptions
         SET enabled = false,
             disabled_reason = CASE WHEN enabled THEN $2 ELSE disabled_reason END,
             disabled_at = CASE WHEN enabled THEN now() ELSE disabled_at END,
             updated_at = now()
         WHERE subscription_id = $1 RETURNING ${SUBSCRIPTION_COLUMNS}`,
    enabled ? [id] : [id, reason],
  );
  return result.rows[0] ?? null;
}

/** Deliveries of a subscription that an instance holds right now (a claim whose lease runs). */
export async function countClaims(db: Queryable, subscriptionId: string): Promise<number> {
  const result = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM event.webhook_deliveries
     WHERE subscription_id = $1 AND lease_token IS NOT NULL AND next_attempt_at > now()`,
    [subscriptionId],
  );
  return result.rows[0]?.n ?? 0;
}

/** Deletes a subscription with its deliveries and their attempts; false when it did not exist. */
export async function deleteSubscription(db: Queryable, id: string): Promise<boolean> {
  const result = await db.query('DELETE FROM event.event_subscriptions WHERE subscription_id = $1', [id]);
  return result.rowCount > 0;
}

// ---------------------------------------------------------------------------------------------
// Fan-out

export interface FanoutSubscription {
  subscription_id: string;
  event_types: string[];
  event_sources: string[] | null;
  event_categories: string[] | null;
  start_position: number;
}

export async function enabledSubscriptions(db: Queryable): Promise<FanoutSubscription[]> {
  const result = await db.query<FanoutSubscription>(
    `SELECT subscription_id, event_types, event_sources, event_categories, start_position
     FROM event.event_subscriptions WHERE enabled`,
  );
  return result.rows;
}

/**
 * In one snapshot: whether any subscription is enabled, and the last event position. Positions
 * commit in order (store/follower.ts), so every event up to it is visible; a subscription not yet
 * visible read its start_position under the position lock, at or after it.
 */
export async function fanoutHead(db: Queryable): Promise<{ subscribed: boolean; head: number }> {
  const result = await db.query<{ subscribed: boolean; head: number }>(
    `SELECT EXISTS (SELECT 1 FROM event.event_subscriptions WHERE enabled) AS subscribed,
       COALESCE((SELECT max(position) FROM event.events), 0) AS head`,
  );
  return result.rows[0]!;
}

export interface NewDelivery {
  delivery_id: string;
  subscription_id: string;
  event_id: string;
  event_position: number;
}

/**
 * Inserts deliveries due now; a (subscription, event) that already has one is skipped, and so is a
 * subscription disabled or deleted meanwhile. Returns how many were inserted.
 */
export async function insertDeliveries(tx: Queryable, deliveries: NewDelivery[]): Promise<number> {
  if (deliveries.length === 0) return 0;
  const result = await tx.query(
    `INSERT INTO event.webhook_deliveries (delivery_id, subscription_id, event_id, event_position, next_attempt_at)
     SELECT n.delivery_id, n.subscription_id, n.event_id, n.event_position, now()
     FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
       AS n(delivery_id, subscription_id, event_id, event_position)
     JOIN event.event_subscriptions s ON s.subscription_id = n.subscription_id AND s.enabled
     ON CONFLICT (subscription_id, event_id) DO NOTHING`,
    [
      deliveries.map((d) => d.delivery_id),
      deliveries.map((d) => d.subscription_id),
      deliveries.map((d) => d.event_id),
      deliveries.map((d) => d.event_position),
    ],
  );
  return result.rowCount;
}

// ---------------------------------------------------------------------------------------------
// Engine

export interface ClaimedDelivery {
  delivery_id: string;
  subscription_id: string;
  /** Attempts including this one. */
  attempts: number;
  round_attempts: number;
  callback_url: string;
  webhook_secret: string;
  retry_policy: RetryPolicy;
  event: DeliverableEvent;
}

export interface ClaimRequest {
  /** Most deliveries to claim. */
  limit: number;
  /** Most deliveries of one subscription this instance may have in flight. */
  perSubscription: number;
  /** What this instance has in flight now, per subscription. */
  inFlight: ReadonlyMap<string, number>;
  leaseMs: number;
  token: string;
}

type ClaimRow = Omit<ClaimedDelivery, 'event'> & DeliverableEvent;

/**
 * Claims due deliveries of enabled subscriptions, at most `perSubscription` in flight per
 * subscription (subscriptions visited in random order, so none is starved), with a lease: until
 * it expires, `next_attempt_at` lies in the future and no other instance sees them as due.
 *
 * Rows are locked with SKIP LOCKED (instances never wait on each other), and their subscriptions
 * are re-read FOR SHARE in the same statement: a concurrent disable either committed first (the
 * claim then skips its deliveries) or waits for this claim to commit (and then sees the claim,
 * and waits for it to end).
 */
export async function claimDeliveries(db: Queryable, request: ClaimRequest): Promise<ClaimedDelivery[]> {
  const busy = [...request.inFlight.entries()];
  // One statement, so one round trip and its own transaction.
  const claimed = await db.query<ClaimRow>(
    `WITH picked AS (
       SELECT d.delivery_id, d.subscription_id
       FROM (SELECT s.subscription_id, greatest(0, $3::int - coalesce(u.used, 0)) AS room
             FROM event.event_subscriptions s
             LEFT JOIN unnest($1::text[], $2::int[]) AS u(subscription_id, used) USING (subscription_id)
             WHERE s.enabled
             ORDER BY random()) s
       CROSS JOIN LATERAL (
         SELECT d.delivery_id, d.subscription_id FROM event.webhook_deliveries d
         WHERE d.subscription_id = s.subscription_id AND d.status = 'pending' AND d.next_attempt_at <= now()
         ORDER BY d.next_attempt_at
         LIMIT s.room
         FOR UPDATE OF d SKIP LOCKED
       ) d
       WHERE s.room > 0
       LIMIT $4
     ), live AS (
       SELECT s.subscription_id, s.callback_url, s.webhook_secret, s.retry_policy
       FROM event.event_subscriptions s
       WHERE s.subscription_id IN (SELECT subscription_id FROM picked) AND s.enabled
       FOR SHARE
     )
     UPDATE event.webhook_deliveries d
     SET lease_token = $5, next_attempt_at = now() + $6::double precision * interval '1 millisecond',
         attempts = d.attempts + 1, round_attempts = d.round_attempts + 1, updated_at = now()
     FROM picked p, live s, event.events e
     WHERE d.delivery_id = p.delivery_id AND s.subscription_id = p.subscription_id
       AND e.position = d.event_position
     RETURNING d.delivery_id, d.subscription_id, d.attempts, d.round_attempts, s.callback_url,
       s.webhook_secret, s.retry_policy, ${deliverableColumns('e')}`,
    [
      busy.map(([id]) => id),
      busy.map(([, n]) => n),
      request.perSubscription,
      request.limit,
      request.token,
      request.leaseMs,
    ],
  );
  return claimed.rows.map(
    ({
      delivery_id,
      subscription_id,
      attempts,
      round_attempts,
      callback_url,
      webhook_secret,
      retry_policy,
      ...event
    }) => ({
      delivery_id,
      subscription_id,
      attempts,
      round_attempts,
      callback_url,
      webhook_secret,
      retry_policy,
      event,
    }),
  );
}

/** Gives a claim back without an attempt (its subscription was disabled or deleted meanwhile). */
export async function releaseClaim(db: Queryable, deliveryId: string, token: string): Promise<void> {
  await db.query(
    `UPDATE event.webhook_deliveries
     SET lease_token = NULL, next_attempt_at = now(), attempts = attempts - 1,
         round_attempts = round_attempts - 1, updated_at = now()
     WHERE delivery_id = $1 AND lease_token = $2`,
    [deliveryId, token],
  );
}

/** Of these subscriptions, the ones still enabled. */
export async function enabledAmong(db: Queryable, ids: readonly string[]): Promise<Set<string>> {
  const result = await db.query<{ subscription_id: string }>(
    `SELECT subscription_id FROM event.event_subscriptions WHERE subscription_id = ANY($1::text[]) AND enabled`,
    [ids],
  );
  return new Set(result.rows.map((row) => row.subscription_id));
}

export interface AttemptRecord {
  delivery_id: string;
  subscription_id: string;
  token: string;
  attempt_number: number;
  status: AttemptStatus;
  /** For a retry: milliseconds from now until the next attempt. */
  retry_after_ms: number | null;
  response_status: number | null;
  response_body: string | null;
  error: string | null;
  duration_ms: number;
  attempted_at: Date;
}

export interface RecordedAttempt {
  /** False when the claim had expired and been taken over: only the attempt was logged. */
  updated: boolean;
  /** True when this batch's failures disabled the subscription. */
  disabled: boolean;
}

/**
 * Logs attempts and moves their deliveries on (delivered, due again later, or failed), all in
 * one statement (so one commit for many attempts). Keeps each subscription's failure state: a
 * success clears it, failures after the batch's last success count, and a subscription whose
 * attempts have all failed for `disableAfterMs` (0 = never) is disabled with the reason. Only
 * subscriptions with something to change are locked, in id order (no deadlock between instances),
 * so healthy busy subscriptions do not contend on their row.
 */
export async function recordAttempts(
  db: Queryable,
  records: AttemptRecord[],
  disableAfterMs: number,
): Promise<RecordedAttempt[]> {
  if (records.length === 0) return [];
  const input = records.map((r, ord) => ({ ord, ...r, attempted_at: r.attempted_at.toISOString() }));
  const trip = `($2::bigint > 0 AND sub.enabled AND p.failures_after > 0 AND p.last_success IS NULL
      AND coalesce(sub.failing_since, now()) <= now() - ($2::bigint)::double precision * interval '1 millisecond')`;
  const result = await db.query<{ updated: boolean; tripped: boolean }>(
    `WITH input AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(ord int, delivery_id text, subscription_id text,
         token text, attempt_number int, status text, retry_after_ms double precision, response_status int,
         response_body text, error text, duration_ms int, attempted_at timestamptz)
     ), d AS (
       UPDATE event.webhook_deliveries w SET
         status = CASE r.status WHEN 'delivered' THEN 'delivered' WHEN 'retry' THEN 'pending' ELSE 'failed' END,
         next_attempt_at = CASE WHEN r.status = 'retry'
           THEN now() + r.retry_after_ms * interval '1 millisecond' END,
         lease_token = NULL, last_attempt_at = r.attempted_at, last_response_status = r.response_status,
         last_error = r.error,
         delivered_at = CASE WHEN r.status = 'delivered' THEN now() ELSE w.delivered_at END,
         updated_at = now()
       FROM input r
       WHERE w.delivery_id = r.delivery_id AND w.lease_token = r.token
       RETURNING w.delivery_id, w.next_attempt_at
     ), a AS (
       INSERT INTO event.delivery_attempts (delivery_id, subscription_id, attempt_number, status,
         response_status, response_body, error, duration_ms, attempted_at, next_attempt_at)
       SELECT r.delivery_id, r.subscription_id, r.attempt_number, r.status, r.response_status,
         r.response_body, r.error, r.duration_ms, r.attempted_at, d.next_attempt_at
       FROM input r LEFT JOIN d ON d.delivery_id = r.delivery_id
       ORDER BY r.ord
     ), last_success AS (
       SELECT subscription_id, max(ord) FILTER (WHERE status = 'delivered') AS ord
       FROM input GROUP BY subscription_id
     ), p AS (
       SELECT i.subscription_id, ls.ord AS last_success,
         count(*) FILTER (WHERE i.status <> 'delivered' AND i.ord > coalesce(ls.ord, -1)) AS failures_after,
         (array_agg(i.error ORDER BY i.ord DESC))[1] AS last_error
       FROM input i JOIN last_success ls USING (subscription_id)
       GROUP BY i.subscription_id, ls.ord
     ), locked AS (
       SELECT sub.subscription_id FROM event.event_subscriptions sub JOIN p USING (subscription_id)
       WHERE p.failures_after > 0 OR sub.consecutive_failures > 0 OR sub.failing_since IS NOT NULL
       ORDER BY sub.subscription_id
       FOR UPDATE OF sub
     ), s AS (
       UPDATE event.event_subscriptions sub SET
         failing_since = CASE WHEN p.failures_after = 0 THEN NULL
           WHEN p.last_success IS NOT NULL THEN now() ELSE coalesce(sub.failing_since, now()) END,
         consecutive_failures = CASE WHEN p.last_success IS NOT NULL THEN p.failures_after
           ELSE sub.consecutive_failures + p.failures_after END,
         enabled = CASE WHEN ${trip} THEN false ELSE sub.enabled END,
         disabled_at = CASE WHEN ${trip} THEN now() ELSE sub.disabled_at END,
         disabled_reason = CASE WHEN ${trip} THEN format(
           'every delivery attempt failed for longer than %s ms (since %s, %s attempts in a row); the last: %s',
           $2::bigint,
           to_char(coalesce(sub.failing_since, now()) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
           sub.consecutive_failures + p.failures_after, p.last_error)
           ELSE sub.disabled_reason END
       FROM p, locked
       WHERE sub.subscription_id = p.subscription_id AND locked.subscription_id = p.subscription_id
       RETURNING sub.subscription_id, (NOT sub.enabled AND sub.disabled_at = now()) AS tripped
     )
     SELECT (d.delivery_id IS NOT NULL) AS updated, coalesce(s.tripped, false) AS tripped
     FROM input r
     LEFT JOIN d ON d.delivery_id = r.delivery_id
     LEFT JOIN s ON s.subscription_id = r.subscription_id
     ORDER BY r.ord`,
    [JSON.stringify(input), disableAfterMs],
  );
  return result.rows.map((row) => ({ updated: row.updated, disabled: row.tripped }));
}

// ---------------------------------------------------------------------------------------------
// The delivery log

export interface AttemptRow {
  attempt_number: number;
  status: AttemptStatus;
  response_status: number | null;
  response_body: string | null;
  error: string | null;
  duration_ms: number;
  attempted_at: Date;
  next_attempt_at: Date | null;
}

export interface DeliveryRow {
  delivery_id: string;
  subscription_id: string;
  event_id: string;
  event_type: string | null;
  status: DeliveryStatus;
  attempts: number;
  in_flight: boolean;
  next_attempt_at: Date | null;
  last_attempt_at: Date | null;
  last_response_status: number | null;
  last_error: string | null;
  delivered_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const DELIVERY_COLUMNS = `d.delivery_id, d.subscription_id, d.event_id, e.event_type, d.status, d.attempts,
  (d.lease_token IS NOT NULL AND d.next_attempt_at > now()) AS in_flight,
  CASE WHEN d.status = 'pending' AND (d.lease_token IS NULL OR d.next_attempt_at <= now())
    THEN d.next_attempt_at END AS next_attempt_at,
  d.last_attempt_at, d.last_response_status, d.last_error, d.delivered_at, d.created_at, d.updated_at`;

export async function listDeliveries(
  db: Queryable,
  subscriptionId: string,
  page: { status?: DeliveryStatus; limit: number; offset: number },
): Promise<{ items: (DeliveryRow & { attempt_log: AttemptRow[] })[]; total: number }> {
  const items = await db.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS}
     FROM event.webhook_deliveries d LEFT JOIN event.events e ON e.position = d.event_position
     WHERE d.subscription_id = $1 AND ($4::text IS NULL OR d.status = $4)
     ORDER BY d.event_position DESC, d.delivery_id DESC LIMIT $2 OFFSET $3`,
    [subscriptionId, page.limit, page.offset, page.status ?? null],
  );
  const total = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM event.webhook_deliveries
     WHERE subscription_id = $1 AND ($2::text IS NULL OR status = $2)`,
    [subscriptionId, page.status ?? null],
  );
  const attempts = await attemptsOf(
    db,
    items.rows.map((row) => row.delivery_id),
  );
  return {
    items: items.rows.map((row) => ({ ...row, attempt_log: attempts.get(row.delivery_id) ?? [] })),
    total: total.rows[0]?.n ?? 0,
  };
}

async function attemptsOf(db: Queryable, deliveryIds: string[]): Promise<Map<string, AttemptRow[]>> {
  const byDelivery = new Map<string, AttemptRow[]>();
  if (deliveryIds.length === 0) return byDelivery;
  const result = await db.query<AttemptRow & { delivery_id: string }>(
    `SELECT delivery_id, attempt_number, status, response_status, response_body, error, duration_ms,
       attempted_at, next_attempt_at
     FROM event.delivery_attempts WHERE delivery_id = ANY($1::text[]) ORDER BY attempt_id`,
    [deliveryIds],
  );
  for (const { delivery_id, ...attempt } of result.rows) {
    const list = byDelivery.get(delivery_id) ?? [];
    list.push(attempt);
    byDelivery.set(delivery_id, list);
  }
  return byDelivery;
}

export async function getDelivery(
  db: Queryable,
  subscriptionId: string,
  deliveryId: string,
): Promise<(DeliveryRow & { attempt_log: AttemptRow[] }) | null> {
  const result = await db.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS}
     FROM event.webhook_deliveries d LEFT JOIN event.events e ON e.position = d.event_position
     WHERE d.subscription_id = $1 AND d.delivery_id = $2`,
    [subscriptionId, deliveryId],
  );
  const row = result.rows[0];
  if (!row) return null;
  const attempts = await attemptsOf(db, [deliveryId]);
  return { ...row, attempt_log: attempts.get(deliveryId) ?? [] };
}

/**
 * Makes a finished (failed or delivered) delivery due now, with a fresh retry budget. Returns
 * false when it is still pending (nothing to do) or does not exist.
 */
export async function scheduleRedelivery(
  db: Queryable,
  subscriptionId: string,
  deliveryId: string,
): Promise<boolean> {
  const result = await db.query(
    `UPDATE event.webhook_deliveries
     SET status = 'pending', next_attempt_at = now(), round_attempts = 0, lease_token = NULL, updated_at = now()
     WHERE subscription_id = $1 AND delivery_id = $2 AND status <> 'pending'`,
    [subscriptionId, deliveryId],
  );
  return result.rowCount > 0;
}
