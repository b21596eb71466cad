/** Request and response schemas of the projection endpoints: they validate requests and generate OpenAPI. */
import { Type } from 'typebox';
import {
  DateTime,
  JsonObject,
  NullableDateTime,
  NullableString,
  StringEnum,
} from '../http/schema-helpers.js';
import { ProjectionStatus } from '../store/projection-definitions.js';
import { DSL_LIMITS, OPERATIONS } from './reducer-dsl.js';

/** Largest registration body: bounded handlers, literals and initial state fit well within it. */
export const DEFINITION_BODY_LIMIT = 262_144;

const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]*$';
const Name = (description: string) =>
  Type.String({ minLength: 1, maxLength: 100, pattern: NAME_PATTERN, description });
const EntityType = (description: string) =>
  Type.String({ minLength: 1, maxLength: 100, pattern: '^[^:]+$', description });

export const ProjectionParamsSchema = Type.Object({
  entity_type: EntityType('Entity type (the stream is `{entity_type}:{entity_id}`)'),
  entity_id: Type.String({ minLength: 1, maxLength: 255 }),
});

export const ProjectionQuerySchema = Type.Object(
  {
    name: Type.Optional(
      Name(
        'A declared projection (`POST /api/v1/events/projections`); absent or `default`: the default projection',
      ),
    ),
    as_of_version: Type.Optional(
      Type.Integer({ minimum: 1, description: 'The state after this version (at most the current one)' }),
    ),
    as_of: Type.Optional(
      DateTime({
        description:
          'The state after the newest version whose event `timestamp` is at or before this instant',
      }),
    ),
  },
  { additionalProperties: false },
);

export const ProjectionSchema = Type.Object(
  {
    projection_id: Type.String({ description: '`{projection_name}:{stream_id}`' }),
    projection_name: Type.String(),
    entity_type: Type.String(),
    entity_id: Type.String(),
    state: Type.Record(Type.String(), Type.Unknown(), {
      description:
        'Default projection: the data of the latest event of each event type. Declared projection: what its handlers made of the events',
    }),
    version: Type.Integer({ description: 'Events applied (the stream version the state is at)' }),
    last_event_id: Type.String(),
    created_at: DateTime({ description: 'When the stream was created' }),
    updated_at: DateTime({ description: 'When the last applied event was stored' }),
  },
  { title: 'Projection' },
);

const path = (description: string) =>
  Type.String({ minLength: 1, maxLength: DSL_LIMITS.pathLength, description });

export const OperationSchema = Type.Object(
  {
    op: StringEnum(OPERATIONS, {
      description:
        '`set` path ← from|value; `merge` the object at from (default `data`) into path (default: the whole state); `increment` path by `by` (default 1) or the number at from; `append` from|value to the list at path (newest max_length kept); `remove` path; `delete` the whole state (the entity then reads as 404 until a later event matches a handler; must be the last operation of its handler)',
    }),
    path: Type.Optional(
      path(
        `Dot path into the state (at most ${DSL_LIMITS.pathSegments} segments; no \`__proto__\`, \`constructor\`, \`prototype\`)`,
      ),
    ),
    from: Type.Optional(
      path(
        'A field of the event: `data`, `metadata`, `context`, `properties` (and dot paths into them; digits index lists), or `event_id`, `event_type`, `event_source`, `event_category`, `user_id`, `session_id`, `organization_id`, `device_id`, `correlation_id`, `timestamp`, `created_at`, `stream_id`, `entity_type`, `entity_id`, `stream_version`, `position`. An operation whose `from` is absent from the event changes nothing',
      ),
    ),
    value: Type.Optional(
      Type.Unknown({ description: '`set`, `append`: a literal JSON value instead of `from`' }),
    ),
    default: Type.Optional(Type.Unknown({ description: '`set`: the value when the event lacks `from`' })),
    by: Type.Optional(Type.Number({ description: '`increment`: the amount (default 1)' })),
    max_length: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: DSL_LIMITS.listLength,
        description: `\`append\`: the newest items kept (default ${DSL_LIMITS.defaultListLength})`,
      }),
    ),
  },
  { additionalProperties: false, title: 'ProjectionOperation' },
);

export const HandlerSchema = Type.Object(
  {
    event_type: Type.String({
      minLength: 1,
      maxLength: DSL_LIMITS.eventTypeLength,
      description: 'Event type, or a NATS-style pattern (`cart.*` one token, `cart.>` the rest)',
    }),
    operations: Type.Array(OperationSchema, { minItems: 1, maxItems: DSL_LIMITS.operations }),
  },
  { additionalProperties: false, title: 'ProjectionHandler' },
);

export const RegisterProjectionSchema = Type.Object(
  {
    name: Name('Unique name (`default` is the built-in projection)'),
    entity_type: EntityType('The entity type whose streams it projects'),
    description: Type.Optional(NullableString({ maxLength: 2000, description: 'Free text for people' })),
    initial_state: Type.Optional(
      JsonObject({ description: 'The state before the first event (default `{}`)' }),
    ),
    handlers: Type.Array(HandlerSchema, {
      minItems: 1,
      maxItems: DSL_LIMITS.handlers,
      description: 'Every handler whose event_type matches an event runs, in this order',
    }),
  },
  { additionalProperties: false, title: 'RegisterProjection' },
);

export const DefinitionSchema = Type.Object(
  {
    definition_id: Type.String(),
    name: Type.String(),
    entity_type: Type.String(),
    description: NullableString(),
    initial_state: JsonObject(),
    handlers: Type.Array(HandlerSchema),
    generation: Type.Integer({ description: 'Starts at 1; each rebuild adds 1' }),
    status: StringEnum(Object.values(ProjectionStatus), {
      description:
        '`rebuilding`: computing the states of the events stored before it started (after registration or a rebuild); `live`: following new events. Reads are exact in both',
    }),
    progress: Type.Object({
      processed_position: Type.Integer({ description: 'Every event at or below this position is applied' }),
      start_position: Type.Integer({ description: 'Where this generation started reading the log' }),
      target_position: Type.Integer({ description: 'The newest position when it started: live from there' }),
      head_position: Type.Integer({ description: 'The newest position now' }),
      events_applied: Type.Integer({ description: 'Events of the entity type applied in this generation' }),
      percent: Type.Number({ description: 'Of the way from start_position to target_position' }),
      started_at: DateTime(),
      finished_at: NullableDateTime({ description: 'When it became live' }),
    }),
    created_at: DateTime(),
    updated_at: DateTime(),
  },
  { title: 'ProjectionDefinition' },
);

export const DefinitionParamsSchema = Type.Object({ name: Name('The projection') });

export const DefinitionListQuerySchema = Type.Object(
  { entity_type: Type.Optional(EntityType('Only projections of this entity type')) },
  { additionalProperties: false },
);

export const DeletedDefinitionSchema = Type.Object({
  status: Type.Literal('deleted'),
  name: Type.String(),
});
