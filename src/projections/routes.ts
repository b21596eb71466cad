/**
 * Endpoint 9 of the seed contract and declared projections.
 *
 * `GET /api/v1/events/projections/{entity_type}/{entity_id}`: an entity's default projection
 * (`state[event_type] = data`), current or as of a version or a time, folded at read time from the
 * newest snapshot; with `?name=`, a declared projection (declared.ts). Both always reflect every
 * event acknowledged for the stream before the request, on any instance.
 *
 * Definitions: register, list, get (with rebuild progress), delete, rebuild. Thin: validate, call
 * the service, answer. `/projections/{name}` and `/projections/{entity_type}/{entity_id}` differ
 * in their number of segments, so the router never confuses them. Reads need `events:read` (a
 * user-bound principal: only streams whose every event is its user's), definitions `admin`
 * (src/auth/policy.ts).
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { boundUser } from '../auth/ownership.js';
import { NotFoundError, ValidationError } from '../domain/errors.js';
import { parseTimestamp } from '../domain/event.js';
import { errorResponses } from '../http/schema-helpers.js';
import { guarded, type Db } from '../store/db.js';
import { readDefaultProjection } from '../store/projections.js';
import { streamOwnedBy } from '../store/reads.js';
import type { DeclaredProjections, RegisterInput } from './declared.js';
import { DEFAULT_PROJECTION } from './default-reducer.js';
import {
  DEFINITION_BODY_LIMIT,
  DefinitionListQuerySchema,
  DefinitionParamsSchema,
  DefinitionSchema,
  DeletedDefinitionSchema,
  ProjectionParamsSchema,
  ProjectionQuerySchema,
  ProjectionSchema,
  RegisterProjectionSchema,
} from './schemas.js';

const TAGS = ['projections'];
const BASE = '/api/v1/events/projections';

export async function projectionRoutes(
  app: FastifyInstance,
  deps: { db: Db; snapshotEvery: number; declared: DeclaredProjections },
): Promise<void> {
  const { declared } = deps;

  app.get(
    `${BASE}/:entity_type/:entity_id`,
    {
      schema: {
        tags: TAGS,
        summary: "Read an entity's projection",
        description:
          'The default projection of the stream `{entity_type}:{entity_id}`, or with `name` a declared projection: current, or as of a version ' +
          '(`as_of_version`) or a time (`as_of`; both: the earlier). Always includes every event acknowledged before the request. ' +
          '404 when the entity has no events (by then), when the projection does not exist or is of another entity type, and when a `delete` operation deleted its state. ' +
          'A user-bound credential reads the projections of streams whose every event is of its user; any other stream is a 404 to it.',
        params: ProjectionParamsSchema,
        querystring: ProjectionQuerySchema,
        response: { 200: ProjectionSchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request) => {
      const { entity_type, entity_id } = request.params as Static<typeof ProjectionParamsSchema>;
      const query = request.query as Static<typeof ProjectionQuerySchema>;
      let asOf: Date | undefined;
      if (query.as_of !== undefined) {
        asOf = parseTimestamp(query.as_of) ?? undefined;
        if (!asOf) throw new ValidationError([{ path: 'query.as_of', message: 'is out of range' }]);
      }
      const target = { asOfVersion: query.as_of_version, asOf };
      const streamId = `${entity_type}:${entity_id}`;
      // A projection folds the whole stream: a user-bound principal reads it only when every event
      // of the stream is its user's; otherwise the entity does not exist for it.
      const user = boundUser(request.principal);
      if (user !== null && !(await guarded(() => streamOwnedBy(deps.db, streamId, user)))) {
        throw new NotFoundError(`No events for entity ${entity_type}/${entity_id}`);
      }
      if (query.name !== undefined && query.name !== DEFAULT_PROJECTION) {
        return declared.read(query.name, entity_type, entity_id, target);
      }
      const read = await readDefaultProjection(deps.db, streamId, target, deps.snapshotEvery);
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

  app.get(
    BASE,
    {
      schema: {
        tags: TAGS,
        summary: 'List declared projections',
        description:
          'Every declared projection by name (`?entity_type=` filters), with its status and progress.',
        querystring: DefinitionListQuerySchema,
        response: { 200: Type.Array(DefinitionSchema), ...errorResponses(422, 503) },
      },
    },
    async (request) => {
      const { entity_type } = request.query as Static<typeof DefinitionListQuerySchema>;
      return declared.list({ entityType: entity_type });
    },
  );

  app.post(
    BASE,
    {
      bodyLimit: DEFINITION_BODY_LIMIT,
      schema: {
        tags: TAGS,
        summary: 'Register a declared projection',
        description:
          'A named projection of the streams of one entity type: per event type (or NATS-style pattern) a list of operations on the state ' +
          '(`set`, `merge`, `increment`, `append`, `remove`, `delete`). Validated as a whole: 422 names every problem. `name` is unique (409). ' +
          "The states of the entity type's existing events are computed in the background (`status: rebuilding`, progress in `GET …/projections/{name}`); reads are exact meanwhile. " +
          'Publishes `event.projection.created`.',
        body: RegisterProjectionSchema,
        response: { 201: DefinitionSchema, ...errorResponses(400, 409, 413, 415, 422, 503) },
      },
    },
    async (request, reply) => {
      const created = await declared.register(request.body as RegisterInput);
      return reply.code(201).send(created);
    },
  );

  app.get(
    `${BASE}/:name`,
    {
      schema: {
        tags: TAGS,
        summary: 'Get a declared projection',
        description: 'Its definition, status (`rebuilding` or `live`) and progress.',
        params: DefinitionParamsSchema,
        response: { 200: DefinitionSchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request) => {
      const { name } = request.params as Static<typeof DefinitionParamsSchema>;
      return declared.get(name);
    },
  );

  app.delete(
    `${BASE}/:name`,
    {
      schema: {
        tags: TAGS,
        summary: 'Delete a declared projection',
        description: 'The definition and every state it computed. The events stay.',
        params: DefinitionParamsSchema,
        response: { 200: DeletedDefinitionSchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request) => {
      const { name } = request.params as Static<typeof DefinitionParamsSchema>;
      await declared.remove(name);
      return { status: 'deleted' as const, name };
    },
  );

  app.post(
    `${BASE}/:name/rebuild`,
    {
      schema: {
        tags: TAGS,
        summary: 'Rebuild a declared projection',
        description:
          'Recomputes every state from the log in the background: a new generation, followed from the first event of the entity type. ' +
          'Answers 202 with the definition; `GET …/projections/{name}` shows the progress. A rebuild in progress goes on (it is not restarted). Reads stay exact throughout.',
        params: DefinitionParamsSchema,
        response: { 202: DefinitionSchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request, reply) => {
      const { name } = request.params as Static<typeof DefinitionParamsSchema>;
      return reply.code(202).send(await declared.rebuild(name));
    },
  );
}
