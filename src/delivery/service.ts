/**
 * Webhook subscriptions: create (secret generated or checked, callback URL checked against the
 * SSRF rules, announced through the outbox), read, update, enable/disable, delete, the delivery
 * log and redelivery. Disable and delete answer only once no instance holds a claim on the
 * subscription's deliveries any more, so no request starts after they return.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { uuidv7 } from '../domain/ids.js';
import { LifecycleSubject, outboxMessage } from '../bus/envelope.js';
import { ConflictError, NotFoundError, ValidationError, type FieldProblem } from '../domain/errors.js';
import { checkTargetUrl } from '../net/ssrf.js';
import { guarded, RETRYABLE_SQLSTATES, sqlState, type Db } from '../store/db.js';
import { patternProblem } from './matching.js';
import type { RetryPolicy } from './retry.js';
import { generateSecret, secretProblem } from './signing.js';
import {
  countClaims,
  deleteSubscription,
  getDelivery,
  getSubscription,
  insertSubscription,
  listDeliveries,
  listSubscriptions,
  scheduleRedelivery,
  setSubscriptionEnabled,
  updateSubscription,
  type AttemptRow,
  type DeliveryRow,
  type DeliveryStatus,
  type SubscriptionPatch,
  type SubscriptionRow,
} from './store.js';

export interface CreateSubscriptionInput {
  subscriber_name: string;
  subscriber_type?: string;
  description?: string | null;
  event_types: string[];
  event_sources?: string[] | null;
  event_categories?: string[] | null;
  callback_url: string;
  webhook_secret?: string;
  enabled?: boolean;
  retry_policy?: RetryPolicy;
}

export type UpdateSubscriptionInput = Partial<CreateSubscriptionInput>;

export type Delivery = DeliveryRow & { attempt_log: AttemptRow[] };

export interface SubscriptionService {
  /** The subscription and its secret, which is never shown again. */
  create(input: CreateSubscriptionInput): Promise<{ subscription: SubscriptionRow; webhook_secret: string }>;
  list(filter?: { enabled?: boolean }): Promise<SubscriptionRow[]>;
  get(id: string): Promise<SubscriptionRow>;
  update(id: string, input: UpdateSubscriptionInput): Promise<SubscriptionRow>;
  setEnabled(id: string, enabled: boolean): Promise<SubscriptionRow>;
  remove(id: string): Promise<void>;
  deliveries(
    id: string,
    page: { status?: DeliveryStatus; limit: number; offset: number },
  ): Promise<{ items: Delivery[]; total: number }>;
  redeliver(id: string, deliveryId: string): Promise<Delivery>;
}

export interface SubscriptionServiceDeps {
  db: Db;
  allowPrivateNetworks: boolean;
  /** The delivery lease: the longest a claim can outlive its instance. */
  leaseMs: number;
  now: () => Date;
  /** Wakes the local delivery engine (after a redelivery or an enable). */
  onScheduled?: () => void;
}

const SUBSCRIBER_NAME_CONSTRAINT = 'event_subscriptions_subscriber_name_key';

function nameConflict(error: unknown, name: string | undefined): ConflictError | null {
  if (sqlState(error) !== '23505') return null;
  const constraint = (error as { constraint?: unknown }).constraint;
  if (constraint !== undefined && constraint !== SUBSCRIBER_NAME_CONSTRAINT) return null;
  return new ConflictError(`A subscription named ${JSON.stringify(name)} already exists`, { cause: error });
}

function notFound(id: string): NotFoundError {
  return new NotFoundError(`Subscription not found: ${id}`);
}

/** Empty filter lists mean "any", stored as null. */
function anyWhenEmpty(list: string[] | null | undefined): string[] | null | undefined {
  if (list === undefined) return undefined;
  return list === null || list.length === 0 ? null : [...new Set(list)];
}

export function createSubscriptionService(deps: SubscriptionServiceDeps): SubscriptionService {
  const { db } = deps;

  /** Everything the schema cannot check: patterns, the callback URL (SSRF), the secret. */
  async function problems(input: UpdateSubscriptionInput): Promise<FieldProblem[]> {
    const found: FieldProblem[] = [];
    input.event_types?.forEach((pattern, index) => {
      const problem = patternProblem(pattern);
      if (problem) found.push({ path: `body.event_types[${index}]`, message: problem });
    });
    if (input.callback_url !== undefined) {
      const problem = await checkTargetUrl(input.callback_url, deps.allowPrivateNetworks);
      if (problem) found.push({ path: 'body.callback_url', message: problem });
    }
    if (input.webhook_secret !== undefined) {
      const problem = secretProblem(input.webhook_secret);
      if (problem) found.push({ path: 'body.webhook_secret', message: problem });
    }
    return found;
  }

  /**
   * Waits until no instance holds a claim on the subscription's deliveries: each engine drops
   * the claims of a disabled subscription within a poll, and a claim of an instance that died
   * ends with its lease.
   */
  async function waitForClaims(id: string): Promise<void> {
    const deadline = Date.now() + deps.leaseMs + 1000;
    while ((await countClaims(db, id)) > 0 && Date.now() < deadline) await sleep(5);
  }

  async function disable(id: string, reason: string): Promise<SubscriptionRow> {
    const row = await setSubscriptionEnabled(db, id, false, reason);
    if (!row) throw notFound(id);
    await waitForClaims(id);
    return row;
  }

  async function enable(id: string): Promise<SubscriptionRow> {
    const row = await setSubscriptionEnabled(db, id, true, null);
    if (!row) throw notFound(id);
    deps.onScheduled?.();
    return row;
  }

  return {
    create: (input) =>
      guarded(async () => {
        const found = await problems(input);
        if (found.length > 0) throw new ValidationError(found);
        const secret = input.webhook_secret ?? generateSecret();
        const id = `sub_${uuidv7()}`;
        const enabled = input.enabled ?? true;
        const eventTypes = [...new Set(input.event_types)];
        const createdAt = deps.now();
        try {
          const subscription = await insertSubscription(
            db,
            {
              subscription_id: id,
              subscriber_name: input.subscriber_name,
              subscriber_type: input.subscriber_type ?? 'webhook',
              description: input.description ?? null,
              event_types: eventTypes,
              event_sources: anyWhenEmpty(input.event_sources) ?? null,
              event_categories: anyWhenEmpty(input.event_categories) ?? null,
              callback_url: input.callback_url,
              webhook_secret: secret,
              enabled,
              retry_policy: input.retry_policy ?? {},
            },
            outboxMessage(
              `subscription-created-${id}`,
              LifecycleSubject.SUBSCRIPTION_CREATED,
              {
                subscription_id: id,
                subscriber_name: input.subscriber_name,
                subscriber_type: input.subscriber_type ?? 'webhook',
                event_types: eventTypes,
                event_sources: anyWhenEmpty(input.event_sources) ?? null,
                event_categories: anyWhenEmpty(input.event_categories) ?? null,
                enabled,
                timestamp: createdAt.toISOString(),
              },
              createdAt,
            ),
          );
          return { subscription, webhook_secret: secret };
        } catch (error) {
          throw nameConflict(error, input.subscriber_name) ?? error;
        }
      }),

    list: (filter) => guarded(() => listSubscriptions(db, filter)),

    get: (id) =>
      guarded(async () => {
        const row = await getSubscription(db, id);
        if (!row) throw notFound(id);
        return row;
      }),

    update: (id, input) =>
      guarded(async () => {
        const found = await problems(input);
        if (found.length > 0) throw new ValidationError(found);
        const patch: SubscriptionPatch = {
          subscriber_name: input.subscriber_name,
          subscriber_type: input.subscriber_type,
          description: input.description,
          event_types: input.event_types === undefined ? undefined : [...new Set(input.event_types)],
          event_sources: anyWhenEmpty(input.event_sources),
          event_categories: anyWhenEmpty(input.event_categories),
          callback_url: input.callback_url,
          webhook_secret: input.webhook_secret,
          retry_policy: input.retry_policy,
        };
        let row: SubscriptionRow | null;
        try {
          row = await updateSubscription(db, id, patch);
        } catch (error) {
          throw nameConflict(error, input.subscriber_name) ?? error;
        }
        if (!row) throw notFound(id);
        if (input.enabled === true && !row.enabled) return enable(id);
        if (input.enabled === false && row.enabled) return disable(id, 'disabled on request');
        return row;
      }),

    setEnabled: (id, enabled) => guarded(() => (enabled ? enable(id) : disable(id, 'disabled on request'))),

    remove: (id) =>
      guarded(async () => {
        // Disable first and wait for claims: then nothing holds its delivery rows, and the delete
        // (which cascades to them) cannot meet a claim in flight.
        await disable(id, 'being deleted');
        for (let tries = 1; ; tries++) {
          try {
            await deleteSubscription(db, id);
            return;
          } catch (error) {
            const state = sqlState(error);
            if (tries >= 3 || state === undefined || !RETRYABLE_SQLSTATES.has(state)) throw error;
          }
        }
      }),

    deliveries: (id, page) =>
      guarded(async () => {
        if (!(await getSubscription(db, id))) throw notFound(id);
        return listDeliveries(db, id, page);
      }),

    redeliver: (id, deliveryId) =>
      guarded(async () => {
        if (!(await getSubscription(db, id))) throw notFound(id);
        const scheduled = await scheduleRedelivery(db, id, deliveryId);
        const delivery = await getDelivery(db, id, deliveryId);
        if (!delivery) throw new NotFoundError(`Delivery not found: ${deliveryId}`);
        if (!scheduled) {
          throw new ConflictError(
            `Delivery ${deliveryId} is still pending: it is attempted again without being asked`,
          );
        }
        deps.onScheduled?.();
        return delivery;
      }),
  };
}
