/** Request and response schemas of the event endpoints: they validate requests and generate OpenAPI. */
import { Type } from 'typebox';
import { EVENT_CATEGORIES, EVENT_SOURCES, EVENT_STATUSES } from '../domain/event.js';
import {
  DateTime,
  JsonObject,
  NullableDateTime,
  NullableInteger,
  NullableJsonObject,
  NullableString,
  StringEnum,
} from '../http/schema-helpers.js';

const Id = (description: string) => Type.String({ minLength: 1, maxLength: 255, description });
const NullableId = (description: string) => NullableString({ minLength: 1, maxLength: 255, description });

export const ExpectedVersionSchema = Type.Union(
  [
    StringEnum(['any', 'no_stream', 'stream_exists'] as const),
    Type.Integer({ minimum: 0, maximum: 2_147_483_647 }),
  ],
  {
    description:
      'Optimistic concurrency: `any` (default), `no_stream`, `stream_exists`, or the exact current stream version (0 = no events yet). A mismatch is a 409 that reports the actual version.',
  },
);

export const CreateEventSchema = Type.Object(
  {
    event_type: Type.String({ minLength: 1, maxLength: 255, description: 'e.g. `user.registered`' }),
    event_source: Type.Optional(StringEnum(EVENT_SOURCES, { default: 'backend' })),
    event_category: Type.Optional(StringEnum(EVENT_CATEGORIES, { default: 'user_action' })),
    user_id: Type.Optional(NullableId('The user the event is about or by')),
    session_id: Type.Optional(NullableId('Session id')),
    organization_id: Type.Optional(NullableId('Organization id')),
    device_id: Type.Optional(NullableId('Device id')),
    correlation_id: Type.Optional(NullableId('Correlation id across services')),
    data: Type.Optional(JsonObject({ description: 'Event payload' })),
    metadata: Type.Optional(NullableJsonObject({ description: 'Free-form metadata' })),
    context: Type.Optional(NullableJsonObject({ description: 'Request context' })),
    properties: Type.Optional(NullableJsonObject({ description: 'Extra properties' })),
    timestamp: Type.Optional(
      DateTime({ description: 'When it happened (RFC 3339); defaults to the time of receipt' }),
    ),
    stream_id: Type.Optional(
      Type.String({
        minLength: 3,
        maxLength: 357,
        description: 'Stream `{entity_type}:{entity_id}`; or give entity_type and entity_id',
      }),
    ),
    entity_type: Type.Optional(
      Type.String({ minLength: 1, maxLength: 100, pattern: '^[^:]+$', description: 'Entity type (no `:`)' }),
    ),
    entity_id: Type.Optional(Id('Entity id')),
    expected_version: Type.Optional(ExpectedVersionSchema),
    idempotency_key: Type.Optional(
      Id('A repeat with the same key and content returns the original event; with other content it is a 409'),
    ),
    event_id: Type.Optional(Id('Client-chosen event id; default a UUIDv7. Same rules as idempotency_key')),
  },
  { additionalProperties: false, title: 'EventCreateRequest' },
);

export const EventSchema = Type.Object(
  {
    event_id: Type.String(),
    event_type: Type.String(),
    event_source: StringEnum(EVENT_SOURCES),
    event_category: StringEnum(EVENT_CATEGORIES),
    user_id: NullableString(),
    session_id: NullableString(),
    organization_id: NullableString(),
    device_id: NullableString(),
    correlation_id: NullableString(),
    data: JsonObject(),
    metadata: JsonObject(),
    context: NullableJsonObject(),
    properties: NullableJsonObject(),
    status: StringEnum(EVENT_STATUSES),
    processed_at: NullableDateTime(),
    processors: Type.Array(Type.String()),
    error_message: NullableString(),
    retry_count: Type.Integer(),
    timestamp: DateTime(),
    created_at: DateTime(),
    updated_at: DateTime(),
    version: Type.String(),
    schema_version: Type.String(),
    position: Type.Integer({ description: 'Global position: unique, increasing in insert order' }),
    stream_id: NullableString(),
    entity_type: NullableString(),
    entity_id: NullableString(),
    stream_version: NullableInteger({ description: 'Version of the event within its stream (1, 2, 3 …)' }),
    idempotency_key: NullableString(),
  },
  { title: 'EventResponse' },
);

export const BatchQuerySchema = Type.Object({
  partial: Type.Optional(
    Type.Boolean({
      default: false,
      description:
        'false (default): all events are stored or none. true: each event on its own; the answer is 207 with one outcome per event',
    }),
  ),
});

export const BatchItemResultSchema = Type.Object({
  index: Type.Integer(),
  status: Type.Integer({ description: 'HTTP status this event would have had on its own: 201, 409 or 422' }),
  event: Type.Optional(EventSchema),
  error: Type.Optional(
    Type.Object(
      {
        detail: Type.String(),
        code: Type.String(),
        errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
      },
      { additionalProperties: true },
    ),
  ),
});

export const PartialBatchResponseSchema = Type.Object({
  results: Type.Array(BatchItemResultSchema),
  succeeded: Type.Integer(),
  failed: Type.Integer(),
});

export const QueryEventsSchema = Type.Object(
  {
    user_id: Type.Optional(Id('')),
    event_type: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    event_types: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { minItems: 1, maxItems: 100 }),
    ),
    event_source: Type.Optional(StringEnum(EVENT_SOURCES)),
    event_category: Type.Optional(StringEnum(EVENT_CATEGORIES)),
    status: Type.Optional(StringEnum(EVENT_STATUSES)),
    correlation_id: Type.Optional(Id('')),
    session_id: Type.Optional(Id('')),
    organization_id: Type.Optional(Id('')),
    device_id: Type.Optional(Id('')),
    stream_id: Type.Optional(Type.String({ minLength: 1, maxLength: 357 })),
    start_time: Type.Optional(DateTime({ description: 'Events at or after this time' })),
    end_time: Type.Optional(DateTime({ description: 'Events at or before this time' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 })),
    cursor: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        description: 'next_cursor of the previous page (use instead of offset for deep pages)',
      }),
    ),
    include_total: Type.Optional(
      Type.Boolean({ default: true, description: 'false skips counting `total`' }),
    ),
  },
  { additionalProperties: false, title: 'EventQueryRequest' },
);

export const EventListSchema = Type.Object(
  {
    events: Type.Array(EventSchema),
    total: NullableInteger({
      description: 'Every event matching the filters (null when include_total is false)',
    }),
    limit: Type.Integer(),
    offset: Type.Integer(),
    has_more: Type.Boolean(),
    next_cursor: NullableString({ description: 'Pass as `cursor` to get the next page' }),
  },
  { title: 'EventListResponse' },
);

export const StatisticsQuerySchema = Type.Object(
  {
    user_id: Type.Optional(Id('Only this user’s events')),
    start_time: Type.Optional(DateTime({ description: 'Events at or after this time' })),
    end_time: Type.Optional(DateTime({ description: 'Events at or before this time' })),
  },
  { additionalProperties: false },
);

const Counts = Type.Record(Type.String(), Type.Integer());

export const StatisticsSchema = Type.Object(
  {
    total_events: Type.Integer(),
    pending_events: Type.Integer(),
    processing_events: Type.Integer(),
    processed_events: Type.Integer(),
    failed_events: Type.Integer(),
    archived_events: Type.Integer(),
    events_by_source: Counts,
    events_by_category: Counts,
    events_by_type: Type.Record(Type.String(), Type.Integer(), {
      description: 'The 1000 most frequent types',
    }),
    events_by_status: Counts,
    events_today: Type.Integer({ description: 'Since 00:00 UTC today' }),
    events_this_week: Type.Integer({ description: 'Since 00:00 UTC seven days ago' }),
    events_this_month: Type.Integer({ description: 'Since 00:00 UTC thirty days ago' }),
    average_processing_time: Type.Number({
      description: 'Milliseconds from creation to processing, over processed events',
    }),
    processing_rate: Type.Number({ description: 'Percent of events processed' }),
    error_rate: Type.Number({ description: 'Percent of events failed' }),
    top_users: Type.Array(Type.Object({ user_id: Type.String(), event_count: Type.Integer() })),
    top_event_types: Type.Array(Type.Object({ event_type: Type.String(), event_count: Type.Integer() })),
    user_id: NullableString(),
    start_time: NullableDateTime(),
    end_time: NullableDateTime(),
    generated_at: DateTime(),
  },
  { title: 'EventStatistics' },
);

export const EventIdParamsSchema = Type.Object({ event_id: Type.String({ minLength: 1, maxLength: 255 }) });
