/** Request and response schemas of the replay endpoints: they validate requests and generate OpenAPI. */
import { Type } from 'typebox';
import { EVENT_SOURCES } from '../domain/event.js';
import {
  DateTime,
  JsonObject,
  NullableDateTime,
  NullableInteger,
  NullableString,
  StringEnum,
} from '../http/schema-helpers.js';
import { REPLAY_STATUSES } from '../store/replay.js';

/** Most event ids one replay may name. */
export const MAX_EVENT_IDS = 10_000;
/** Most event ids a dry run lists. */
export const DRY_RUN_IDS = 1_000;

export const ReplayRequestSchema = Type.Object(
  {
    event_ids: Type.Optional(
      Type.Unsafe<string[] | null>({
        type: ['array', 'null'],
        items: { type: 'string', minLength: 1, maxLength: 255 },
        minItems: 1,
        maxItems: MAX_EVENT_IDS,
        description: `These events (at most ${MAX_EVENT_IDS.toLocaleString('en-US')}, no repeats); unknown ids are not counted`,
      }),
    ),
    stream_id: Type.Optional(
      NullableString({ minLength: 1, maxLength: 357, description: 'The events of this stream' }),
    ),
    start_time: Type.Optional(
      NullableDateTime({ description: 'Events whose `timestamp` is at or after this time (with end_time)' }),
    ),
    end_time: Type.Optional(
      NullableDateTime({
        description: 'Events whose `timestamp` is at or before this time (with start_time)',
      }),
    ),
    event_type: Type.Optional(
      NullableString({ minLength: 1, maxLength: 255, description: 'Only this type' }),
    ),
    event_source: Type.Optional(
      Type.Unsafe<string | null>({
        type: ['string', 'null'],
        enum: [...EVENT_SOURCES, null],
        description: `Only this source: ${EVENT_SOURCES.join(', ')}`,
      }),
    ),
    target_service: Type.Optional(
      NullableString({
        minLength: 1,
        maxLength: 128,
        description:
          'Events are republished to `event.replayed.{target_service}` (spaces, `.`, `*` and `>` become `_`); default `all`',
      }),
    ),
    reprocess: Type.Optional(
      Type.Boolean({
        default: false,
        description:
          'Also run the enabled processors matching each event again: new processing results (GET …/replay/{replay_id}/results); the events themselves stay as they are',
      }),
    ),
    dry_run: Type.Optional(
      Type.Boolean({
        default: false,
        description: 'Only count the events and list the first ids: nothing is published or stored',
      }),
    ),
  },
  { additionalProperties: false, title: 'EventReplayRequest' },
);

export const DryRunResponseSchema = Type.Object(
  {
    dry_run: Type.Literal(true),
    events_count: Type.Integer({ description: 'Exactly how many events a replay would cover now' }),
    events: Type.Array(Type.String(), {
      description: `Ids of the first ${DRY_RUN_IDS.toLocaleString('en-US')} of them, in replay order`,
    }),
  },
  { title: 'EventReplayDryRunResponse' },
);

export const ReplayStartedSchema = Type.Object(
  {
    status: Type.Literal('replay_started'),
    message: Type.String(),
    replay_id: Type.String(),
    events_count: Type.Integer({ description: 'Exactly how many events the replay covers' }),
    dry_run: Type.Literal(false),
    subject: Type.String({ description: 'Where the events are republished' }),
  },
  { title: 'EventReplayStartedResponse' },
);

export const ReplayJobSchema = Type.Object(
  {
    replay_id: Type.String(),
    status: StringEnum(REPLAY_STATUSES, {
      description:
        '`queued` (no instance has taken it yet), `running`, `completed`, `failed` (see `error`) or `cancelled`',
    }),
    selection: JsonObject({
      description: 'The criteria as given (a list of ids is summed up as `event_ids_count`)',
    }),
    target_service: Type.String(),
    subject: Type.String(),
    reprocess: Type.Boolean(),
    total: Type.Integer({ description: 'Events the replay covers' }),
    replayed: Type.Integer({ description: 'Events republished (and, with reprocess, processed)' }),
    failed: Type.Integer({ description: 'Events republished whose processors failed (reprocess)' }),
    error: NullableString({
      description: 'Why it failed, or the problem it is waiting out (e.g. the bus is unreachable)',
    }),
    created_at: DateTime(),
    started_at: NullableDateTime(),
    finished_at: NullableDateTime(),
    updated_at: DateTime(),
  },
  { title: 'EventReplay' },
);

export const ReplayIdParamsSchema = Type.Object({
  replay_id: Type.String({ minLength: 1, maxLength: 100 }),
});

export const ReplayListQuerySchema = Type.Object(
  {
    status: Type.Optional(StringEnum(REPLAY_STATUSES)),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 })),
  },
  { additionalProperties: false },
);

export const ReplayListSchema = Type.Object(
  {
    replays: Type.Array(ReplayJobSchema),
    total: Type.Integer(),
    limit: Type.Integer(),
    offset: Type.Integer(),
    has_more: Type.Boolean(),
  },
  { title: 'EventReplayList' },
);

export const ReplayResultsQuerySchema = Type.Object(
  {
    status: Type.Optional(StringEnum(['success', 'failed'] as const)),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000, default: 0 })),
  },
  { additionalProperties: false },
);

export const ReplayResultsSchema = Type.Object(
  {
    replay_id: Type.String(),
    results: Type.Array(
      Type.Object({
        result_id: Type.Integer(),
        event_id: Type.String(),
        processor_id: NullableString(),
        processor_name: Type.String(),
        status: Type.String(),
        message: NullableString(),
        processed_at: DateTime(),
        duration_ms: NullableInteger(),
      }),
    ),
    total: Type.Integer(),
    limit: Type.Integer(),
    offset: Type.Integer(),
    has_more: Type.Boolean(),
  },
  { title: 'EventReplayResults' },
);
