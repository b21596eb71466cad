/**
 * Endpoints 13-15 of the seed contract and the rest of processing: the processor registry (create,
 * list, get, update, delete, toggle), dead letters (`GET /api/v1/events/failed`), retry on demand
 * and an event's processing results. Thin: validate, call, answer.
 */
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import { ConflictError, NotFoundError } from '../domain/errors.js';
import { errorResponses } from '../http/schema-helpers.js';
import type { Db } from '../store/db.js';
import { listFailedEvents, listResults, retryFailedEvent } from '../store/processing.js';
import type { ProcessorInput, ProcessorRegistry } from './registry.js';
import {
  DeletedSchema,
  EventIdParamsSchema,
  FailedListSchema,
  PageQuerySchema,
  ProcessorIdParamsSchema,
  ProcessorInputSchema,
  ProcessorSchema,
  ResultListSchema,
  RetryResponseSchema,
  ToggleQuerySchema,
} from './schemas.js';

export interface ProcessingRoutesDeps {
  db: Db;
  registry: ProcessorRegistry;
  /** Wakes the local processing engine (after a retry on demand); optional. */
  poke?: () => void;
}

const TAGS = ['processing'];
const PROCESSORS = '/api/v1/events/processors';

export async function processingRoutes(app: FastifyInstance, deps: ProcessingRoutesDeps): Promise<void> {
  const { registry } = deps;

  app.post(
    PROCESSORS,
    {
      schema: {
        tags: TAGS,
        summary: 'Register a processor',
        description:
          'A processor acts on every stored event its filters match (events still pending when it is registered included), in priority order with the other matching processors. The config is checked for its type: a bad one is a 422 naming the field; webhook URLs that resolve to private or loopback addresses are refused unless WEBHOOK_ALLOW_PRIVATE_NETWORKS=true. `processor_name` is unique (409).',
        body: ProcessorInputSchema,
        response: { 201: ProcessorSchema, ...errorResponses(400, 409, 415, 422, 503) },
      },
    },
    async (request, reply) => reply.code(201).send(await registry.create(request.body as ProcessorInput)),
  );

  app.get(
    PROCESSORS,
    {
      schema: {
        tags: TAGS,
        summary: 'List processors',
        description: 'Every processor, in run order (priority, highest first, then name).',
        response: { 200: { type: 'array', items: ProcessorSchema }, ...errorResponses(503) },
      },
    },
    async () => registry.list(),
  );

  app.get(
    `${PROCESSORS}/:processor_id`,
    {
      schema: {
        tags: TAGS,
        summary: 'Get a processor',
        params: ProcessorIdParamsSchema,
        response: { 200: ProcessorSchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request) => registry.get((request.params as Static<typeof ProcessorIdParamsSchema>).processor_id),
  );

  app.put(
    `${PROCESSORS}/:processor_id`,
    {
      schema: {
        tags: TAGS,
        summary: 'Replace a processor',
        description:
          'The whole definition, as at creation (omitted optional fields take their defaults). Applies to events claimed from now on.',
        params: ProcessorIdParamsSchema,
        body: ProcessorInputSchema,
        response: { 200: ProcessorSchema, ...errorResponses(400, 404, 409, 415, 422, 503) },
      },
    },
    async (request) =>
      registry.update(
        (request.params as Static<typeof ProcessorIdParamsSchema>).processor_id,
        request.body as ProcessorInput,
      ),
  );

  app.delete(
    `${PROCESSORS}/:processor_id`,
    {
      schema: {
        tags: TAGS,
        summary: 'Delete a processor',
        description: 'Events claimed from now on no longer run it; its processing results are kept.',
        params: ProcessorIdParamsSchema,
        response: { 200: DeletedSchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request) => {
      const { processor_id } = request.params as Static<typeof ProcessorIdParamsSchema>;
      await registry.remove(processor_id);
      return { status: 'deleted' as const, processor_id };
    },
  );

  app.put(
    `${PROCESSORS}/:processor_id/toggle`,
    {
      schema: {
        tags: TAGS,
        summary: 'Enable or disable a processor',
        description:
          '`?enabled=true|false` sets the state; without it the state flips. Answers the processor.',
        params: ProcessorIdParamsSchema,
        querystring: ToggleQuerySchema,
        response: { 200: ProcessorSchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request) => {
      const { processor_id } = request.params as Static<typeof ProcessorIdParamsSchema>;
      const { enabled } = request.query as Static<typeof ToggleQuerySchema>;
      return registry.toggle(processor_id, enabled);
    },
  );

  app.get(
    '/api/v1/events/failed',
    {
      schema: {
        tags: TAGS,
        summary: 'List dead letters of processing',
        description: `Events whose processing failed for good (a permanent failure, or every retry used up): status \`failed\`, newest first. \`error_message\` says why; \`GET /api/v1/events/{event_id}/results\` has each attempt; \`POST /api/v1/events/{event_id}/retry\` tries again.`,
        querystring: PageQuerySchema,
        response: { 200: FailedListSchema, ...errorResponses(422, 503) },
      },
    },
    async (request) => {
      const { limit = 100, offset = 0 } = request.query as Static<typeof PageQuerySchema>;
      const { events, total } = await listFailedEvents(deps.db, { limit, offset });
      return { events, total, limit, offset, has_more: offset + limit < total };
    },
  );

  app.post(
    '/api/v1/events/:event_id/retry',
    {
      schema: {
        tags: TAGS,
        summary: 'Retry a failed event',
        description:
          'Puts a dead letter (status `failed`) back in the processing queue with a fresh retry budget. Processors that already succeeded for it are not run again. 409 when the event is not `failed`.',
        params: EventIdParamsSchema,
        response: { 202: RetryResponseSchema, ...errorResponses(404, 409, 422, 503) },
      },
    },
    async (request, reply) => {
      const { event_id } = request.params as Static<typeof EventIdParamsSchema>;
      const outcome = await retryFailedEvent(deps.db, event_id);
      if (outcome.type === 'not_found') throw new NotFoundError(`Event not found: ${event_id}`);
      if (outcome.type === 'not_failed') {
        throw new ConflictError(
          `Event ${event_id} is ${outcome.status}, not failed: only failed events can be retried`,
        );
      }
      deps.poke?.();
      return reply.code(202).send({ status: 'queued', event_id, event: outcome.event });
    },
  );

  app.get(
    '/api/v1/events/:event_id/results',
    {
      schema: {
        tags: TAGS,
        summary: "An event's processing results",
        description:
          'One row per processor per attempt, oldest first: `success`, `failed`, `skipped` (it had already succeeded) or `retry` (failed, retried later), with the message and the duration.',
        params: EventIdParamsSchema,
        querystring: PageQuerySchema,
        response: { 200: ResultListSchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request) => {
      const { event_id } = request.params as Static<typeof EventIdParamsSchema>;
      const { limit = 100, offset = 0 } = request.query as Static<typeof PageQuerySchema>;
      const page = await listResults(deps.db, event_id, { limit, offset });
      if (!page) throw new NotFoundError(`Event not found: ${event_id}`);
      return {
        event_id,
        results: page.results,
        total: page.total,
        limit,
        offset,
        has_more: offset + limit < page.total,
      };
    },
  );
}
