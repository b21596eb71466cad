/** Endpoint 7 of the seed contract (read one entity's stream in version order), and the list of streams. */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { boundUser } from '../auth/ownership.js';
import { NotFoundError } from '../domain/errors.js';
import { EventSchema } from '../events/schemas.js';
import { DateTime, errorResponses, StringEnum } from '../http/schema-helpers.js';
import type { EventStore } from '../store/index.js';

const ParamsSchema = Type.Object({
  stream_id: Type.String({ minLength: 1, maxLength: 357, description: '`{entity_type}:{entity_id}`' }),
});
export const QuerySchema = Type.Object(
  {
    from_version: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: 'First version to return (forward), or last (backward; default the newest)',
      }),
    ),
    direction: Type.Optional(StringEnum(['forward', 'backward'] as const, { default: 'forward' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 1000 })),
  },
  { additionalProperties: false },
);
export const StreamSchema = Type.Object(
  {
    stream_id: Type.String(),
    stream_type: Type.String(),
    entity_type: Type.String(),
    entity_id: Type.String(),
    events: Type.Array(EventSchema),
    version: Type.Integer({ description: 'Current version of the stream (its number of events)' }),
  },
  { title: 'EventStream' },
);

export const ListQuerySchema = Type.Object(
  {
    entity_type: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 })),
  },
  { additionalProperties: false },
);
export const StreamInfoSchema = Type.Object(
  {
    stream_id: Type.String(),
    stream_type: Type.String(),
    entity_type: Type.String(),
    entity_id: Type.String(),
    version: Type.Integer({ description: 'Number of events in the stream' }),
    first_event_id: Type.String(),
    last_event_id: Type.String(),
    created_at: DateTime(),
    updated_at: DateTime({ description: 'When the last event was appended' }),
  },
  { title: 'StreamInfo' },
);
export const StreamListSchema = Type.Object(
  {
    streams: Type.Array(StreamInfoSchema),
    total: Type.Integer(),
    limit: Type.Integer(),
    offset: Type.Integer(),
    has_more: Type.Boolean(),
  },
  { title: 'StreamList' },
);

export async function streamRoutes(app: FastifyInstance, deps: { store: EventStore }): Promise<void> {
  app.get(
    '/api/v1/events/streams',
    {
      schema: {
        tags: ['streams'],
        summary: 'List streams',
        description:
          'Streams that have events, in stream id order (with `entity_type`: that type only, by entity id). ' +
          'For a user-bound credential: the streams with events of its user, described by those events alone (`version` is the highest version among them).',
        querystring: ListQuerySchema,
        response: { 200: StreamListSchema, ...errorResponses(422, 503) },
      },
    },
    async (request) => {
      const query = request.query as Static<typeof ListQuerySchema>;
      const limit = query.limit ?? 100;
      const offset = query.offset ?? 0;
      const { streams, total } = await deps.store.listStreams({
        entityType: query.entity_type,
        limit,
        offset,
        userId: boundUser(request.principal) ?? undefined,
      });
      return { streams, total, limit, offset, has_more: offset + streams.length < total };
    },
  );

  app.get(
    '/api/v1/events/stream/:stream_id',
    {
      schema: {
        tags: ['streams'],
        summary: 'Read an event stream',
        description:
          'Events of one stream in version order, forwards from `from_version` or backwards. 404 when the stream has no events. ' +
          'For a user-bound credential: only the events of its user (versions may have gaps where other users’ events are), `version` the highest among them; 404 when it has none.',
        params: ParamsSchema,
        querystring: QuerySchema,
        response: { 200: StreamSchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request) => {
      const { stream_id } = request.params as Static<typeof ParamsSchema>;
      const query = request.query as Static<typeof QuerySchema>;
      const read = await deps.store.readStream(stream_id, {
        fromVersion: query.from_version,
        direction: query.direction ?? 'forward',
        limit: query.limit ?? 1000,
        userId: boundUser(request.principal) ?? undefined,
      });
      if (!read) throw new NotFoundError(`Stream not found: ${stream_id}`);
      return { ...read.stream, events: read.events };
    },
  );
}
