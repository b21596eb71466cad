/** Request and response schemas of the subscription endpoints: they validate requests and generate OpenAPI. */
import { Type } from 'typebox';
import { EVENT_CATEGORIES, EVENT_SOURCES } from '../domain/event.js';
import {
  DateTime,
  NullableDateTime,
  NullableInteger,
  NullableString,
  StringEnum,
} from '../http/schema-helpers.js';
import { DEFAULT_BACKOFF_SECONDS, DEFAULT_MAX_RETRIES } from './retry.js';
import { DeliveryStatus, AttemptStatus } from './store.js';

const Name = Type.String({ minLength: 1, maxLength: 255, description: 'Unique name of the subscriber' });
const SubscriberType = (options: { default?: string } = {}) =>
  Type.String({
    minLength: 1,
    maxLength: 100,
    description: 'Kind of subscriber, free text (e.g. `service`, `webhook`)',
    ...options,
  });
const EventTypes = Type.Array(Type.String({ minLength: 1, maxLength: 255 }), {
  minItems: 1,
  maxItems: 100,
  description:
    'Event types to deliver, NATS-style patterns: `*` matches one token, `>` the rest (`user.*` matches `user.created`, `user.>` also `user.profile.updated`, `>` everything)',
});
const Sources = Type.Unsafe<string[] | null>({
  type: ['array', 'null'],
  items: { type: 'string', enum: [...EVENT_SOURCES] },
  maxItems: EVENT_SOURCES.length,
  description: 'Only events from these sources; absent, null or empty = any',
});
const Categories = Type.Unsafe<string[] | null>({
  type: ['array', 'null'],
  items: { type: 'string', enum: [...EVENT_CATEGORIES] },
  maxItems: EVENT_CATEGORIES.length,
  description: 'Only events of these categories; absent, null or empty = any',
});
const CallbackUrl = Type.String({
  minLength: 1,
  maxLength: 2048,
  description:
    'Where deliveries are POSTed: http(s). Refused (422) when its host resolves to a loopback, private, link-local or metadata address, unless WEBHOOK_ALLOW_PRIVATE_NETWORKS=true; checked again at every connection',
});
const Secret = (
  description = 'Standard Webhooks signing secret: `whsec_` + base64 of 24 to 64 random bytes. Generated when absent. Never returned after creation',
) => Type.String({ minLength: 1, maxLength: 200, description });
const Description = NullableString({ maxLength: 2000, description: 'Free text for people' });

export const RetryPolicySchema = Type.Object(
  {
    max_retries: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 50,
        description: `Retries after the first attempt. Default: as many as \`backoff_seconds\` has, else ${DEFAULT_MAX_RETRIES}`,
      }),
    ),
    backoff_seconds: Type.Optional(
      Type.Array(Type.Number({ minimum: 0, maximum: 7 * 24 * 3600 }), {
        minItems: 1,
        maxItems: 50,
        description: `Seconds before retry 1, 2, 3 …, used exactly; the last repeats. Default: ${DEFAULT_BACKOFF_SECONDS.join(', ')} (±20 % jitter)`,
      }),
    ),
  },
  { additionalProperties: false, title: 'RetryPolicy' },
);

export const CreateSubscriptionSchema = Type.Object(
  {
    subscriber_name: Name,
    subscriber_type: Type.Optional(SubscriberType({ default: 'webhook' })),
    description: Type.Optional(Description),
    event_types: EventTypes,
    event_sources: Type.Optional(Sources),
    event_categories: Type.Optional(Categories),
    callback_url: CallbackUrl,
    webhook_secret: Type.Optional(Secret()),
    enabled: Type.Optional(Type.Boolean({ default: true })),
    retry_policy: Type.Optional(RetryPolicySchema),
  },
  { additionalProperties: false, title: 'SubscriptionCreateRequest' },
);

export const UpdateSubscriptionSchema = Type.Object(
  {
    subscriber_name: Type.Optional(Name),
    subscriber_type: Type.Optional(SubscriberType()),
    description: Type.Optional(Description),
    event_types: Type.Optional(EventTypes),
    event_sources: Type.Optional(Sources),
    event_categories: Type.Optional(Categories),
    callback_url: Type.Optional(CallbackUrl),
    webhook_secret: Type.Optional(Secret('A new signing secret (`whsec_…`, rotation); never returned')),
    enabled: Type.Optional(Type.Boolean()),
    retry_policy: Type.Optional(RetryPolicySchema),
  },
  { additionalProperties: false, minProperties: 1, title: 'SubscriptionUpdateRequest' },
);

export const SubscriptionSchema = Type.Object(
  {
    subscription_id: Type.String(),
    subscriber_name: Type.String(),
    subscriber_type: Type.String(),
    description: NullableString(),
    event_types: Type.Array(Type.String()),
    event_sources: Type.Unsafe<string[] | null>({ type: ['array', 'null'], items: { type: 'string' } }),
    event_categories: Type.Unsafe<string[] | null>({ type: ['array', 'null'], items: { type: 'string' } }),
    callback_url: Type.String(),
    enabled: Type.Boolean(),
    retry_policy: Type.Object(
      {
        max_retries: Type.Optional(Type.Integer()),
        backoff_seconds: Type.Optional(Type.Array(Type.Number())),
      },
      { description: 'As given; `{}` = the default schedule' },
    ),
    disabled_reason: NullableString({ description: 'Why it is disabled (e.g. failing for too long)' }),
    disabled_at: NullableDateTime(),
    failing_since: NullableDateTime({
      description: 'Since when every attempt has failed; null after a success',
    }),
    consecutive_failures: Type.Integer({ description: 'Failed attempts since the last success' }),
    start_position: Type.Integer({ description: 'Only events with a higher position are delivered' }),
    created_at: DateTime(),
    updated_at: DateTime(),
  },
  { title: 'Subscription' },
);

export const CreatedSubscriptionSchema = Type.Object(
  {
    ...SubscriptionSchema.properties,
    webhook_secret: Type.String({
      description: 'The signing secret. Shown this once: store it now, it is never returned again',
    }),
  },
  { title: 'SubscriptionCreated' },
);

export const SubscriptionListQuerySchema = Type.Object({
  enabled: Type.Optional(Type.Boolean({ description: 'Only enabled (true) or disabled (false) ones' })),
});

export const SubscriptionIdParamsSchema = Type.Object({
  subscription_id: Type.String({ minLength: 1, maxLength: 255 }),
});

export const DeliveryParamsSchema = Type.Object({
  subscription_id: Type.String({ minLength: 1, maxLength: 255 }),
  delivery_id: Type.String({ minLength: 1, maxLength: 64 }),
});

export const DeletedSubscriptionSchema = Type.Object({
  status: Type.Literal('deleted'),
  subscription_id: Type.String(),
  message: Type.String(),
});

export const DeliveryListQuerySchema = Type.Object({
  status: Type.Optional(StringEnum(Object.values(DeliveryStatus))),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
});

export const AttemptSchema = Type.Object(
  {
    attempt_number: Type.Integer({ description: 'The `webhook-attempt` header it was sent with' }),
    status: StringEnum(Object.values(AttemptStatus), {
      description: '`delivered`, `retry` (another attempt follows) or `failed` (none follows)',
    }),
    response_status: NullableInteger({ description: 'HTTP status answered; null without an answer' }),
    response_body: NullableString({ description: 'First 1 KiB of the answer' }),
    error: NullableString({ description: 'Why it did not count as delivered' }),
    duration_ms: Type.Integer(),
    attempted_at: DateTime(),
    next_attempt_at: NullableDateTime({ description: 'When the next attempt was scheduled (retries)' }),
  },
  { title: 'DeliveryAttempt' },
);

export const DeliverySchema = Type.Object(
  {
    delivery_id: Type.String(),
    subscription_id: Type.String(),
    event_id: Type.String(),
    event_type: NullableString(),
    status: StringEnum(Object.values(DeliveryStatus), {
      description: '`pending` (due or waiting for a retry), `delivered`, or `failed` (no more attempts)',
    }),
    attempts: Type.Integer({ description: 'Attempts made' }),
    in_flight: Type.Boolean({ description: 'An attempt is under way' }),
    next_attempt_at: NullableDateTime({ description: 'When a pending delivery is next attempted' }),
    last_attempt_at: NullableDateTime(),
    last_response_status: NullableInteger(),
    last_error: NullableString(),
    delivered_at: NullableDateTime(),
    created_at: DateTime(),
    updated_at: DateTime(),
    attempt_log: Type.Array(AttemptSchema, { description: 'Every attempt, oldest first' }),
  },
  { title: 'Delivery' },
);

export const DeliveryListSchema = Type.Object(
  {
    deliveries: Type.Array(DeliverySchema),
    total: Type.Integer(),
    limit: Type.Integer(),
    offset: Type.Integer(),
    has_more: Type.Boolean(),
  },
  { title: 'DeliveryList' },
);
