/** Endpoint 7 of the seed contract: read one entity's stream in version order. */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { NotFoundError } from '../domain/errors.js';
import { EventSchema } from '../events/schemas.js';
import { errorResponses, StringEnum } from '../http/schema-helpers.js';
import type { EventStore } from '../store/index.js';

const ParamsSchema = Type.Object({
  stream_id: Type.String({ minLength: 1, maxLength: 357, description: '`{entity_type}:{entity_id}`' }),
});
const QuerySchema = Type.Object(
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
const StreamSchema = Type.Object(
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

export async function streamRoutes(app: FastifyInstance, deps: { store: EventStore }): Promise<void> {
  app.get(
    '/api/v1/events/stream/:stream_id',
    {
      schema: {
        tags: ['streams'],
        summary: 'Read an event stream',
        description:
          'Events of one stream in version order, forwards from `from_version` or backwards. 404 when the stream has no events.',
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
      });
      if (!read) throw new NotFoundError(`Stream not found: ${stream_id}`);
      return { ...read.stream, events: read.events };
    },
  );
}
