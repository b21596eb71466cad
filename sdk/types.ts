/**
 * The types of the SDK, derived from the schemas the server validates requests and generates its
 * OpenAPI document with. Type-only imports: nothing of the server runs in a client.
 *
 * Requests are the schemas' static types as they are; responses go through `Wire`, which turns the
 * `Date`s a server handler may return into the strings JSON carries.
 */
import type { Static, TSchema } from 'typebox';
import type {
  DryRunResponseSchema,
  ReplayJobSchema,
  ReplayListQuerySchema,
  ReplayListSchema,
  ReplayRequestSchema,
  ReplayResultsQuerySchema,
  ReplayResultsSchema,
  ReplayStartedSchema,
} from '../src/replay/schemas.js';
import type {
  CreateEventSchema,
  EventListSchema,
  EventSchema,
  ExpectedVersionSchema,
  PartialBatchResponseSchema,
  QueryEventsSchema,
  StatisticsQuerySchema,
  StatisticsSchema,
} from '../src/events/schemas.js';
import type {
  ListQuerySchema as StreamListQuerySchema,
  QuerySchema as StreamQuerySchema,
  StreamInfoSchema,
  StreamListSchema,
  StreamSchema,
} from '../src/streams/routes.js';
import type {
  DefinitionListQuerySchema,
  DefinitionSchema,
  DeletedDefinitionSchema,
  HandlerSchema,
  OperationSchema,
  ProjectionQuerySchema,
  ProjectionSchema,
  RegisterProjectionSchema,
} from '../src/projections/schemas.js';
import type {
  DeletedSchema,
  FailedListSchema,
  FiltersSchema,
  PageQuerySchema,
  ProcessorInputSchema,
  ProcessorSchema,
  ResultListSchema,
  ResultSchema,
  RetryResponseSchema,
} from '../src/processing/schemas.js';
import type {
  AttemptSchema,
  CreatedSubscriptionSchema,
  CreateSubscriptionSchema,
  DeletedSubscriptionSchema,
  DeliveryListQuerySchema,
  DeliveryListSchema,
  DeliverySchema,
  RetryPolicySchema,
  SubscriptionSchema,
  UpdateSubscriptionSchema,
} from '../src/delivery/schemas.js';
import type {
  DeadLetterListSchema,
  DeadLetterQuerySchema,
  DeadLetterSchema,
  FrontendAcceptedSchema,
  FrontendBatchAcceptedSchema,
  FrontendEventSchema,
  FrontendHealthSchema,
} from '../src/ingest/frontend-schemas.js';
import type { SegmentMessageSchema, WebhookResponseSchema } from '../src/ingest/segment-schemas.js';
import type { HealthSchema, ReadySchema } from '../src/http/health.js';
import type {
  ApiKeySchema,
  CreatedKeySchema,
  CreateKeySchema,
  KeyListQuerySchema,
  KeyListSchema,
  WhoAmISchema,
} from '../src/auth/schemas.js';

/** A value as JSON carries it: `Date` becomes an ISO 8601 string, everything else stays. */
export type Wire<T> = T extends Date
  ? string
  : T extends readonly (infer Item)[]
    ? Wire<Item>[]
    : T extends object
      ? { [K in keyof T]: Wire<T[K]> }
      : T;

/** The body a route answers with. */
type Answer<S extends TSchema> = Wire<Static<S>>;

// --- events ---------------------------------------------------------------------------------------

/** `POST /api/v1/events/create` body; also one item of a batch. */
export type EventCreateRequest = Static<typeof CreateEventSchema>;
/** `any`, `no_stream`, `stream_exists` or the exact current stream version. */
export type ExpectedVersion = Static<typeof ExpectedVersionSchema>;
/** A stored event, as every endpoint returns it. */
export type EventResponse = Answer<typeof EventSchema>;
/** `?partial=true` batch answer: one outcome per item, in request order. */
export type PartialBatchResponse = Answer<typeof PartialBatchResponseSchema>;
export type PartialBatchItem = PartialBatchResponse['results'][number];
/** `POST /api/v1/events/query` body. */
export type EventQueryRequest = Static<typeof QueryEventsSchema>;
/** One page of a query. */
export type EventList = Answer<typeof EventListSchema>;
export type StatisticsQuery = Static<typeof StatisticsQuerySchema>;
export type EventStatistics = Answer<typeof StatisticsSchema>;

// --- streams --------------------------------------------------------------------------------------

export type StreamReadQuery = Static<typeof StreamQuerySchema>;
export type EventStream = Answer<typeof StreamSchema>;
export type StreamListQuery = Static<typeof StreamListQuerySchema>;
export type StreamInfo = Answer<typeof StreamInfoSchema>;
export type StreamList = Answer<typeof StreamListSchema>;

// --- projections ----------------------------------------------------------------------------------

export type ProjectionQuery = Static<typeof ProjectionQuerySchema>;
export type Projection = Answer<typeof ProjectionSchema>;
export type ProjectionOperation = Static<typeof OperationSchema>;
export type ProjectionHandler = Static<typeof HandlerSchema>;
export type RegisterProjectionRequest = Static<typeof RegisterProjectionSchema>;
export type ProjectionDefinition = Answer<typeof DefinitionSchema>;
export type ProjectionDefinitionListQuery = Static<typeof DefinitionListQuerySchema>;
export type DeletedProjection = Answer<typeof DeletedDefinitionSchema>;

// --- replay ---------------------------------------------------------------------------------------

export type ReplayRequest = Static<typeof ReplayRequestSchema>;
export type ReplayDryRun = Answer<typeof DryRunResponseSchema>;
export type ReplayStarted = Answer<typeof ReplayStartedSchema>;
export type ReplayJob = Answer<typeof ReplayJobSchema>;
export type ReplayListQuery = Static<typeof ReplayListQuerySchema>;
export type ReplayList = Answer<typeof ReplayListSchema>;
export type ReplayResultsQuery = Static<typeof ReplayResultsQuerySchema>;
export type ReplayResults = Answer<typeof ReplayResultsSchema>;

// --- processing -----------------------------------------------------------------------------------

export type ProcessorFilters = Static<typeof FiltersSchema>;
export type ProcessorRequest = Static<typeof ProcessorInputSchema>;
export type Processor = Answer<typeof ProcessorSchema>;
export type DeletedProcessor = Answer<typeof DeletedSchema>;
export type PageQuery = Static<typeof PageQuerySchema>;
export type FailedEventList = Answer<typeof FailedListSchema>;
export type RetryResponse = Answer<typeof RetryResponseSchema>;
export type ProcessingResult = Answer<typeof ResultSchema>;
export type ProcessingResultList = Answer<typeof ResultListSchema>;

// --- subscriptions --------------------------------------------------------------------------------

export type RetryPolicy = Static<typeof RetryPolicySchema>;
export type SubscriptionCreateRequest = Static<typeof CreateSubscriptionSchema>;
export type SubscriptionUpdateRequest = Static<typeof UpdateSubscriptionSchema>;
export type Subscription = Answer<typeof SubscriptionSchema>;
/** The creation answer: the subscription and its `webhook_secret`, shown this once. */
export type SubscriptionCreated = Answer<typeof CreatedSubscriptionSchema>;
export type DeletedSubscription = Answer<typeof DeletedSubscriptionSchema>;
export type DeliveryListQuery = Static<typeof DeliveryListQuerySchema>;
export type DeliveryAttempt = Answer<typeof AttemptSchema>;
export type Delivery = Answer<typeof DeliverySchema>;
export type DeliveryList = Answer<typeof DeliveryListSchema>;

// --- ingest channels ------------------------------------------------------------------------------

export type FrontendEvent = Static<typeof FrontendEventSchema>;
export type FrontendAccepted = Answer<typeof FrontendAcceptedSchema>;
export type FrontendBatchAccepted = Answer<typeof FrontendBatchAcceptedSchema>;
export type FrontendHealth = Answer<typeof FrontendHealthSchema>;
export type DeadLetterQuery = Static<typeof DeadLetterQuerySchema>;
export type DeadLetter = Answer<typeof DeadLetterSchema>;
export type DeadLetterList = Answer<typeof DeadLetterListSchema>;
/** One Segment-spec message for the RudderStack webhook (unknown fields are kept). */
export type SegmentMessage = Static<typeof SegmentMessageSchema> & Record<string, unknown>;
export type WebhookAccepted = Answer<typeof WebhookResponseSchema>;

// --- health ---------------------------------------------------------------------------------------

export type Health = Answer<typeof HealthSchema>;
/** `/health/ready`: `status` is `ready`, `degraded` or `not_ready` (the latter answered with 503). */
export type Readiness = Answer<typeof ReadySchema>;

// --- authentication ------------------------------------------------------------------------------

/** `POST /api/v1/auth/keys` body: `name`, `scopes`, optional `user_id` and `expires_at`. */
export type ApiKeyCreateRequest = Static<typeof CreateKeySchema>;
/** A scope an API key grants: `events:read`, `events:write`, `admin` (which implies the others). */
export type ApiKeyScope = ApiKeyCreateRequest['scopes'][number];
/** An API key as listed and revoked: never with the key itself. */
export type ApiKey = Answer<typeof ApiKeySchema>;
/** The creation answer: `key` (`esk_…`) is shown this once. */
export type ApiKeyCreated = Answer<typeof CreatedKeySchema>;
export type ApiKeyListQuery = Static<typeof KeyListQuerySchema>;
export type ApiKeyList = Answer<typeof KeyListSchema>;
/** Who a credential speaks for. */
export type WhoAmI = Answer<typeof WhoAmISchema>;
