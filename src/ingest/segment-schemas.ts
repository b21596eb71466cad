/**
 * Schemas of the Segment-style channels (RudderStack webhook, tracking API). They document the
 * routes in OpenAPI and validate each message on its own (one bad message does not fail the
 * others). Unknown fields are allowed everywhere: the Segment spec grows and SDKs add their own.
 */
import { Type, type TSchema } from 'typebox';
import { NullableJsonObject, NullableString, StringEnum } from '../http/schema-helpers.js';
import { SEGMENT_TYPES } from './segment.js';

const IdValue = (description: string) =>
  Type.Unsafe<string | number | null>({
    type: ['string', 'number', 'null'],
    maxLength: 255,
    description,
  });

const TimeText = (description: string) =>
  NullableString({
    description: `${description} (ISO 8601); a value that is not a date is kept in metadata but not used`,
  });

/** One message of the Segment spec; `type` decides which fields matter. */
export const SegmentMessageSchema = Type.Object(
  {
    type: StringEnum(SEGMENT_TYPES, {
      description: 'Message type (any case). `/v1/<type>` endpoints set it themselves.',
    }),
    event: Type.Optional(
      Type.String({ minLength: 1, maxLength: 255, description: 'Event name: required for `track`' }),
    ),
    userId: Type.Optional(IdValue("Known user id; the event's user_id")),
    anonymousId: Type.Optional(IdValue('Anonymous id; the user_id when there is no userId')),
    messageId: Type.Optional(
      Type.Unsafe<string | number | null>({
        type: ['string', 'number', 'null'],
        description: 'Unique per message: a repeat is stored once (idempotency key `segment:<messageId>`)',
      }),
    ),
    groupId: Type.Optional(IdValue('Group id (`group`)')),
    previousId: Type.Optional(IdValue('Previous id (`alias`)')),
    properties: Type.Optional(NullableJsonObject({ description: 'Event properties' })),
    traits: Type.Optional(
      NullableJsonObject({ description: 'Traits (`identify`, `group`); else `context.traits` is used' }),
    ),
    context: Type.Optional(NullableJsonObject({ description: 'Context: library, page, device, ip, …' })),
    integrations: Type.Optional(
      NullableJsonObject({ description: 'Destination switches (kept in metadata)' }),
    ),
    name: Type.Optional(NullableString({ description: 'Page or screen name' })),
    category: Type.Optional(NullableString({ description: 'Page category' })),
    timestamp: Type.Optional(TimeText('When it happened; default corrected for clock skew')),
    originalTimestamp: Type.Optional(TimeText("When it happened by the device's clock")),
    sentAt: Type.Optional(TimeText('When the device sent it')),
    receivedAt: Type.Optional(TimeText('When a collector (RudderStack) received it')),
  },
  {
    title: 'SegmentMessage',
    additionalProperties: true,
    // `track` needs an event name; the other types are named by their type.
    if: { properties: { type: { const: 'track' } }, required: ['type'] },
    then: { required: ['event'] },
  },
);

export const WebhookBodySchema = (maxItems: number) =>
  Type.Union([SegmentMessageSchema, Type.Array(SegmentMessageSchema, { minItems: 1, maxItems })], {
    description: `One message, or an array of at most ${maxItems}.`,
  });

export const RejectedMessageSchema = Type.Object(
  {
    index: Type.Integer({ description: 'Place of the message in the request' }),
    code: Type.String(),
    detail: Type.String(),
    errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
  },
  { title: 'RejectedMessage', additionalProperties: true },
);

const Rejected = Type.Optional(
  Type.Array(RejectedMessageSchema, {
    description: 'Messages that can never be stored (present only when there are some); the others were',
  }),
);

export const WebhookResponseSchema = Type.Object(
  {
    status: Type.Literal('accepted'),
    count: Type.Integer({ description: 'Messages stored (a repeat counts: it is stored once)' }),
    event_ids: Type.Array(Type.String(), { description: 'Ids of the stored events, in request order' }),
    rejected: Rejected,
  },
  { title: 'WebhookAccepted' },
);

/** `/v1/track`, `/v1/page`, …: one message whose `type` the path gives. */
export const TrackingMessageSchema: TSchema = Type.Object(
  {
    ...SegmentMessageSchema.properties,
    type: Type.Optional(SegmentMessageSchema.properties.type),
    writeKey: Type.Optional(Type.String({ description: 'Write key, when not sent as Basic username' })),
  },
  { title: 'TrackingMessage', additionalProperties: true },
);

export const TrackingBatchSchema = (maxItems: number) =>
  Type.Object(
    {
      batch: Type.Array(SegmentMessageSchema, { minItems: 1, maxItems }),
      context: Type.Optional(
        NullableJsonObject({ description: "Merged under each message's context (the message wins)" }),
      ),
      sentAt: Type.Optional(TimeText('When the batch was sent; used for messages without their own')),
      writeKey: Type.Optional(Type.String({ description: 'Write key, when not sent as Basic username' })),
    },
    { title: 'TrackingBatch', additionalProperties: true },
  );

export const TrackingResponseSchema = Type.Object(
  { success: Type.Literal(true), rejected: Rejected },
  { title: 'TrackingAccepted' },
);
