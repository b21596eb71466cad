/**
 * Endpoint 9 of the seed contract: an entity's default projection (`state[event_type] = data`),
 * current or as of a version or a time. Folded at read time from the newest snapshot, so it always
 * reflects every event acknowledged for the stream before the request, on any instance.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { NotFoundError, ValidationError } from '../domain/errors.js';
import { parseTimestamp } from '../domain/event.js';
import { DateTime, errorResponses } from '../http/schema-helpers.js';
import type { Db } from '../store/db.js';
import { readDefaultProjection } from '../store/projections.js';
import { DEFAULT_PROJECTION } from './default-reducer.js';

const ParamsSchema = Type.Object({
  entity_type: Type.String({ minLength: 1, maxLength: 100, pattern: '^[^:]+$' }),
  entity_id: Type.String({ minLength: 1, maxLength: 255 }),
});
const QuerySchema = Type.Object(
  {
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
const ProjectionSchema = Type.Object(
  {
    projection_id: Type.String(),
    projection_name: Type.String(),
    entity_type: Type.String(),
    entity_id: Type.String(),
    state: Type.Record(Type.String(), Type.Unknown(), {
      description: 'Default projection: the data of the latest event of each event type',
    }),
    version: Type.Integer({ description: 'Events applied (the stream version the state is at)' }),
    last_event_id: Type.String(),
    created_at: DateTime({ description: 'When the stream was created' }),
    updated_at: DateTime({ description: 'When the last applied event was stored' }),
  },
  { title: 'Projection' },
);

export async function projectionRoutes(
  app: FastifyInstance,
  deps: { db: Db; snapshotEvery: number },
): Promise<void> {
  app.get(
    '/api/v1/events/projections/:entity_type/:entity_id',
    {
      schema: {
        tags: ['projections'],
        summary: "Read an entity's projection",
        description:
          'The default projection of the stream `{entity_type}:{entity_id}`: current, or as of a version ' +
          '(`as_of_version`) or a time (`as_of`; both: the earlier). 404 when the entity has no events (by then).',
        params: ParamsSchema,
        querystring: QuerySchema,
        response: { 200: ProjectionSchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request) => {
      const { entity_type, entity_id } = request.params as Static<typeof ParamsSchema>;
      const query = request.query as Static<typeof QuerySchema>;
      let asOf: Date | undefined;
      if (query.as_of !== undefined) {
        asOf = parseTimestamp(query.as_of) ?? undefined;
        if (!asOf) throw new ValidationError([{ path: 'query.as_of', message: 'is out of range' }]);
      }
      const streamId = `${entity_type}:${entity_id}`;
      const read = await readDefaultProjection(
        deps.db,
        streamId,
        { asOfVersion: query.as_of_version, asOf },
        deps.snapshotEvery,
      );
      if (!read || read.last_event_id === null || read.last_event_at === null) {
        throw new NotFoundError(`No events for entity ${entity_type}/${entity_id}`);
      }
      return {
        projection_id: `${DEFAULT_PROJECTION}:${streamId}`,
        projection_name: DEFAULT_PROJECTION,
        entity_type: read.entity_type,
        entity_id: read.entity_id,
        state: read.state,
        version: read.version,
        last_event_id: read.last_event_id,
        created_at: read.created_at,
        updated_at: read.last_event_at,
      };
    },
  );
}
