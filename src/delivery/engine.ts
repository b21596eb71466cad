/**
 * The delivery engine: claims due deliveries (store.ts: SKIP LOCKED + leases that expire), sends
 * each as a signed POST with bounded concurrency (a per-subscription cap keeps one slow or dead
 * endpoint from taking every slot), decides what the result means (retry.ts) and records the
 * attempt. At least once: a claim whose instance dies expires and is claimed again.
 *
 * Stopping delivery "now": every poll it re-reads whether the subscriptions it is sending to are
 * still enabled and aborts the attempts of those that are not, giving their claims back. Disable
 * and delete wait until a subscription has no claim left before they answer (service.ts), so no
 * request starts after their 200.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { createOutboundDispatcher } from '../net/ssrf.js';
import type { Metrics } from '../observability/metrics.js';
import { traceHeaders, traceOfMetadata } from '../observability/trace-context.js';
import type { Db } from '../store/db.js';
import { GroupCommitter } from '../store/group-commit.js';
import { startLoop, type Loop } from '../workers/loop.js';
import { webhookBody } from './payload.js';
import { decideOutcome, type Outcome } from './retry.js';
import { RESPONSE_EXCERPT_BYTES, sendAttempt, type SendResult } from './send.js';
import { webhookHeaders, webhookMessageId } from './signing.js';
import {
  AttemptStatus,
  claimDeliveries,
  enabledAmong,
  recordAttempts,
  releaseClaim,
  type AttemptRecord,
  type ClaimedDelivery,
  type RecordedAttempt,
} from './store.js';

export interface DeliveryEngineOptions {
  db: Db;
  logger?: Logger;
  timeoutMs: number;
  concurrency: number;
  perSubscription: number;
  pollMs: number;
  leaseMs: number;
  /** Disable a subscription failing for this long; 0 = never. */
  disableAfterMs: number;
  allowPrivateNetworks: boolean;
  userAgent: string;
  /** Most deliveries one claim takes. */
  claimBatch?: number;
  /** How long `stop()` lets attempts in flight finish before aborting them. */
  stopGraceMs?: number;
  now?: () => Date;
  random?: () => number;
  dispatcher?: Dispatcher;
  /** Attempts and their durations by outcome (`event_service_webhook_delivery_*`). */
  metrics?: Metrics;
}

export interface DeliveryEngineStats {
  inFlight: number;
  attempts: number;
  delivered: number;
  retried: number;
  failed: number;
  cancelled: number;
}

export interface DeliveryEngine extends Loop {
  stats(): DeliveryEngineStats;
}

interface InFlight {
  subscriptionId: string;
  controller: AbortController;
}

const STATUS_OF: Record<Outcome['type'], AttemptStatus> = {
  delivered: AttemptStatus.DELIVERED,
  retry: AttemptStatus.RETRY,
  dead: AttemptStatus.FAILED,
};

export function startDeliveryEngine(options: DeliveryEngineOptions): DeliveryEngine {
  const { db, logger, metrics } = options;
  const now = options.now ?? (() => new Date());
  const random = options.random ?? Math.random;
  const claimBatch = options.claimBatch ?? 500;
  const dispatcher =
    options.dispatcher ??
    createOutboundDispatcher({
      allowPrivate: options.allowPrivateNetworks,
      // Per origin: several subscriptions may share a host, so only the engine's own caps limit.
      connections: options.concurrency,
    });
  const inFlight = new Map<string, InFlight>();
  const perSubscription = new Map<string, number>();
  const running = new Set<Promise<void>>();
  const stats: DeliveryEngineStats = {
    inFlight: 0,
    attempts: 0,
    delivered: 0,
    retried: 0,
    failed: 0,
    cancelled: 0,
  };
  let lastCheck = 0;
  // A poke while an iteration runs would be lost (the loop only wakes a pause): remember it and
  // go round again instead of pausing.
  let poked = false;
  // False after a claim found nothing while no subscription was at its cap: then a freed slot
  // cannot unlock anything, and only new deliveries (a poke) or the poll look again.
  let mayHaveWork = true;
  /** New deliveries exist (the fan-out inserted some). */
  const poke = () => {
    mayHaveWork = true;
    poked = true;
    loop.poke();
  };
  /** An attempt ended: its slot may let a waiting delivery of a capped subscription go. */
  const slotFreed = () => {
    if (!mayHaveWork) return;
    poked = true;
    loop.poke();
  };

  /** Aborts attempts whose subscription was disabled or deleted (possibly by another instance). */
  async function abortCancelled(): Promise<void> {
    lastCheck = Date.now();
    const ids = [...perSubscription.keys()];
    if (ids.length === 0) return;
    const enabled = await enabledAmong(db, ids);
    for (const entry of inFlight.values()) {
      if (!enabled.has(entry.subscriptionId)) entry.controller.abort();
    }
  }

  /**
   * Attempts finishing together are recorded together: one statement, one commit. A group that
   * fails is recorded one by one, so one bad record does not take the others with it.
   */
  const recorder = new GroupCommitter<AttemptRecord, RecordedAttempt | Error>(
    async (records) => {
      try {
        return await recordAttempts(db, records, options.disableAfterMs);
      } catch (error) {
        if (records.length === 1) return [error instanceof Error ? error : new Error(String(error))];
        return Promise.all(
          records.map((one) =>
            recordAttempts(db, [one], options.disableAfterMs).then(
              ([recorded]) => recorded!,
              (failure: unknown) => (failure instanceof Error ? failure : new Error(String(failure))),
            ),
          ),
        );
      }
    },
    { maxInFlight: Math.max(1, Math.min(2, db.concurrency)), maxGroupWeight: 500, weight: () => 1 },
  );

  async function record(attempt: AttemptRecord): Promise<void> {
    for (let tries = 1; ; tries++) {
      const recorded = await recorder.submit(attempt).catch((error: unknown) => error as Error);
      if (recorded instanceof Error) {
        // The claim expires if this keeps failing, and the delivery is attempted again.
        if (tries >= 3) throw recorded;
        await new Promise((resolve) => setTimeout(resolve, 100 * tries));
        continue;
      }
      if (!recorded.updated) {
        logger?.warn(
          { delivery_id: attempt.delivery_id, subscription_id: attempt.subscription_id },
          'delivery claim had expired and was taken over; only the attempt was logged',
        );
      }
      if (recorded.disabled) {
        logger?.warn(
          { subscription_id: attempt.subscription_id, error: attempt.error },
          'subscription disabled: its deliveries have been failing for too long',
        );
        // Its other attempts in flight stop at the next check.
        lastCheck = 0;
      }
      return;
    }
  }

  async function attempt(claim: ClaimedDelivery, token: string, cancel: AbortSignal): Promise<void> {
    const attemptedAt = now();
    const body = webhookBody(claim.event);
    const headers = {
      ...webhookHeaders({
        secret: claim.webhook_secret,
        msgId: webhookMessageId(claim.event.event_id),
        timestampSeconds: Math.floor(attemptedAt.getTime() / 1000),
        body,
        attempt: claim.attempts,
      }),
      'user-agent': options.userAgent,
      // The trace the event was created in: the receiver continues it.
      ...traceHeaders(traceOfMetadata(claim.event.metadata)),
    };
    const started = performance.now();
    const result: SendResult = await sendAttempt({
      url: claim.callback_url,
      headers,
      body,
      dispatcher,
      timeoutMs: options.timeoutMs,
      cancel,
    });
    const durationMs = Math.round(performance.now() - started);
    if (result.type === 'cancelled') {
      stats.cancelled++;
      metrics?.deliveryAttempts.inc({ outcome: 'cancelled' });
      await releaseClaim(db, claim.delivery_id, token);
      return;
    }
    const outcome = decideOutcome(result, {
      roundAttempts: claim.round_attempts,
      policy: claim.retry_policy ?? {},
      random,
      nowMs: now().getTime(),
    });
    stats.attempts++;
    if (outcome.type === 'delivered') stats.delivered++;
    else if (outcome.type === 'retry') stats.retried++;
    else stats.failed++;
    metrics?.deliveryAttempts.inc({ outcome: outcome.type });
    metrics?.deliveryDuration.observe({ outcome: outcome.type }, durationMs / 1000);
    await record({
      delivery_id: claim.delivery_id,
      subscription_id: claim.subscription_id,
      token,
      attempt_number: claim.attempts,
      status: STATUS_OF[outcome.type],
      retry_after_ms: outcome.type === 'retry' ? outcome.afterMs : null,
      response_status: result.type === 'response' ? result.status : null,
      response_body:
        result.type === 'response' && result.responseBody
          ? result.responseBody.slice(0, RESPONSE_EXCERPT_BYTES)
          : null,
      error: outcome.type === 'delivered' ? null : outcome.reason,
      duration_ms: durationMs,
      attempted_at: attemptedAt,
    });
  }

  function start(claim: ClaimedDelivery, token: string): void {
    const controller = new AbortController();
    inFlight.set(claim.delivery_id, { subscriptionId: claim.subscription_id, controller });
    perSubscription.set(claim.subscription_id, (perSubscription.get(claim.subscription_id) ?? 0) + 1);
    stats.inFlight = inFlight.size;
    const done = attempt(claim, token, controller.signal)
      .catch((error: unknown) => {
        logger?.warn(
          { err: error, delivery_id: claim.delivery_id, subscription_id: claim.subscription_id },
          'delivery attempt could not be recorded; it is retried when its claim expires',
        );
      })
      .finally(() => {
        inFlight.delete(claim.delivery_id);
        const left = (perSubscription.get(claim.subscription_id) ?? 1) - 1;
        if (left > 0) perSubscription.set(claim.subscription_id, left);
        else perSubscription.delete(claim.subscription_id);
        stats.inFlight = inFlight.size;
        running.delete(done);
        slotFreed();
      });
    running.add(done);
  }

  const loop = startLoop({
    name: 'delivery-engine',
    logger,
    idleMs: options.pollMs,
    // Slots freed by attempts that end within a few ms of each other are claimed together: one
    // claim statement for many deliveries instead of one per delivery.
    minIntervalMs: 5,
    iterate: async () => {
      poked = false;
      if (inFlight.size > 0 && Date.now() - lastCheck >= options.pollMs) await abortCancelled();
      const free = options.concurrency - inFlight.size;
      if (free <= 0) return poked ? 'busy' : 'idle';
      const token = randomUUID();
      const capped = [...perSubscription.values()].some((n) => n >= options.perSubscription);
      const claims = await claimDeliveries(db, {
        limit: Math.min(free, claimBatch),
        perSubscription: options.perSubscription,
        inFlight: perSubscription,
        leaseMs: options.leaseMs,
        token,
      });
      for (const claim of claims) start(claim, token);
      if (claims.length > 0) mayHaveWork = true;
      else if (!capped) mayHaveWork = false;
      return claims.length > 0 || poked ? 'busy' : 'idle';
    },
  });

  return {
    poke,
    async stop() {
      await loop.stop();
      const grace = Math.min(options.stopGraceMs ?? 5000, options.timeoutMs);
      const drained = Promise.allSettled([...running]);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), grace)));
      if ((await Promise.race([drained, late])) === 'late') {
        // Given back, not lost: another instance (or this one after a restart) delivers them.
        for (const entry of inFlight.values()) entry.controller.abort();
      }
      clearTimeout(timer);
      await Promise.allSettled([...running]);
      if (!options.dispatcher) await dispatcher.close();
    },
    stats: () => ({ ...stats }),
  };
}
