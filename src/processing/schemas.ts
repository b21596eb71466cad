/** Request and response schemas of the processing endpoints: they validate requests and generate OpenAPI. */
import { Type } from 'typebox';
import { EVENT_CATEGORIES, EVENT_SOURCES } from '../domain/event.js';
import { EventSchema } from '../events/schemas.js';

export { EventIdParamsSchema } from '../events/schemas.js';
import {
  DateTime,
  JsonObject,
  NullableDateTime,
  NullableInteger,
  NullableString,
} from '../http/schema-helpers.js';

const Pattern = Type.String({ minLength: 1, maxLength: 255 });
const OneOrMany = (description: string) =>
  Type.Union(
    [
      Type.String({ minLength: 1, maxLength: 50 }),
      Type.Array(Type.String({ minLength: 1, maxLength: 50 }), { minItems: 1, maxItems: 50 }),
    ],
    {
      description,
    },
  );

export const FiltersSchema = Type.Object(
  {
    event_type: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 255,
        description: 'Event type pattern, NATS-style: `*` one token, `>` the rest (`user.*`, `order.>`)',
      }),
    ),
    event_types: Type.Optional(
      Type.Array(Pattern, { minItems: 1, maxItems: 100, description: 'Any of these patterns matches' }),
    ),
    event_source: Type.Optional(OneOrMany(`A source or a list of them: ${EVENT_SOURCES.join(', ')}`)),
    event_category: Type.Optional(OneOrMany(`A category or a list of them: ${EVENT_CATEGORIES.join(', ')}`)),
  },
  {
    additionalProperties: false,
    description: 'Every filter given must match; no filter matches every event',
  },
);

export const ProcessorInputSchema = Type.Object(
  {
    processor_name: Type.String({ minLength: 1, maxLength: 255, description: 'Unique name' }),
    processor_type: Type.String({
      minLength: 1,
      maxLength: 100,
      description:
        'Built in: `webhook`, `publish`, `redis_stream`, `rabbitmq`; plus the types an embedding program registers',
    }),
    enabled: Type.Optional(Type.Boolean({ default: true })),
    priority: Type.Optional(
      Type.Integer({
        minimum: -1_000_000,
        maximum: 1_000_000,
        default: 0,
        description: 'Run order among the processors of one event: higher first',
      }),
    ),
    filters: Type.Optional(FiltersSchema),
    config: Type.Optional(
      JsonObject({
        description:
          'Per type. webhook: `{url, headers?, timeout_ms?}`; publish: `{subject}`; redis_stream: `{url, stream, maxlen?}`; rabbitmq: `{url, exchange, routing_key}`. Names may carry `{event_type}`, `{event_source}`, `{event_category}`.',
      }),
    ),
  },
  { additionalProperties: false, title: 'ProcessorRequest' },
);

export const ProcessorSchema = Type.Object(
  {
    processor_id: Type.String(),
    processor_name: Type.String(),
    processor_type: Type.String(),
    enabled: Type.Boolean(),
    priority: Type.Integer(),
    filters: JsonObject(),
    config: JsonObject(),
    error_count: Type.Integer({ description: 'Failed runs so far' }),
    last_error: NullableString(),
    last_processed_at: NullableDateTime(),
    created_at: DateTime(),
    updated_at: DateTime(),
  },
  { title: 'Processor' },
);

export const ProcessorIdParamsSchema = Type.Object({
  processor_id: Type.String({ minLength: 1, maxLength: 255 }),
});

export const ToggleQuerySchema = Type.Object({
  enabled: Type.Optional(Type.Boolean({ description: 'The new state; without it the state flips' })),
});

export const DeletedSchema = Type.Object({ status: Type.Literal('deleted'), processor_id: Type.String() });

export const PageQuerySchema = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000, default: 0 })),
});

export const FailedListSchema = Type.Object({
  events: Type.Array(EventSchema),
  total: Type.Integer(),
  limit: Type.Integer(),
  offset: Type.Integer(),
  has_more: Type.Boolean(),
});

export const RetryResponseSchema = Type.Object({
  status: Type.Literal('queued'),
  event_id: Type.String(),
  event: EventSchema,
});

export const ResultSchema = Type.Object(
  {
    result_id: Type.Integer(),
    event_id: Type.String(),
    processor_id: NullableString(),
    processor_name: Type.String(),
    status: Type.String({
      description: '`success`, `failed`, `skipped` (succeeded before) or `retry` (retried later)',
    }),
    message: NullableString(),
    processed_at: DateTime(),
    duration_ms: NullableInteger(),
    attempt: NullableInteger({ description: '1 for the first attempt, then one more per retry' }),
    replay_id: NullableString({
      description: 'The replay (`reprocess: true`) that ran the processor again; null for processing itself',
    }),
  },
  { title: 'ProcessingResult' },
);

export const ResultListSchema = Type.Object({
  event_id: Type.String(),
  results: Type.Array(ResultSchema),
  total: Type.Integer(),
  limit: Type.Integer(),
  offset: Type.Integer(),
  has_more: Type.Boolean(),
});
