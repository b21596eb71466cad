/** Endpoints 2-6 of the seed contract: create, batch, get, query, statistics. Thin: validate, call, answer. */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { boundUser, canSee, foreignWrite, readFilterUser, writeAsUser } from '../auth/ownership.js';
import { NotFoundError, ValidationError, type DomainError, type FieldProblem } from '../domain/errors.js';
import { normalizeCreate, type CreateEventInput } from '../domain/event.js';
import { fromDomainError } from '../http/errors.js';
import { errorResponses } from '../http/schema-helpers.js';
import { compileBodySchema, compileQuerySchema, toFieldProblems } from '../http/validation.js';
import type { Cursor, EventStore } from '../store/index.js';
import {
  BatchQuerySchema,
  CreateEventSchema,
  EventIdParamsSchema,
  EventListSchema,
  EventSchema,
  PartialBatchResponseSchema,
  QueryEventsSchema,
  StatisticsQuerySchema,
  StatisticsSchema,
} from './schemas.js';
import type { BatchItemOutcome, EventService } from './service.js';

export interface EventRoutesDeps {
  store: EventStore;
  events: EventService;
  batchMaxEvents: number;
}

const TAGS = ['events'];

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.timestamp.toISOString(), cursor.position])).toString('base64url');
}

export function decodeCursor(value: string): Cursor {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && typeof parsed[0] === 'string' && Number.isSafeInteger(parsed[1])) {
      const timestamp = new Date(parsed[0]);
      if (!Number.isNaN(timestamp.getTime())) return { timestamp, position: parsed[1] as number };
    }
  } catch {
    // falls through to the validation error
  }
  throw new ValidationError([{ path: 'body.cursor', message: 'is not a cursor this service issued' }]);
}

function optionalDate(value: string | undefined): Date | undefined {
  return value === undefined ? undefined : new Date(value);
}

function checkRange(start: Date | undefined, end: Date | undefined, part: string): void {
  if (start && end && start > end) {
    throw new ValidationError([{ path: `${part}.end_time`, message: 'must not be before start_time' }]);
  }
}

export async function eventRoutes(app: FastifyInstance, deps: EventRoutesDeps): Promise<void> {
  const { store, events } = deps;
  const validateItem = compileBodySchema(CreateEventSchema);
  const validateBatchQuery = compileQuerySchema(BatchQuerySchema);

  /** Every problem of one batch item: its schema errors, or else what normalizing it finds. */
  const itemProblems = (item: unknown, index: number): FieldProblem[] => {
    if (!validateItem(item)) return toFieldProblems(validateItem.errors ?? [], 'body', `body[${index}]`);
    const normalized = normalizeCreate(item as CreateEventInput, `body[${index}]`, () => new Date());
    return normalized.ok ? [] : normalized.errors;
  };

  app.post(
    '/api/v1/events/create',
    {
      schema: {
        tags: TAGS,
        summary: 'Create an event',
        description:
          'Stores one event. With `stream_id` (or `entity_type` + `entity_id`) it is appended to that stream with the next version; `expected_version` guards against concurrent writers. A repeat with the same `idempotency_key` or `event_id` and the same content returns the original event (header `Idempotent-Replayed: true`).',
        body: CreateEventSchema,
        response: { 201: EventSchema, ...errorResponses(400, 409, 413, 415, 422, 503) },
      },
    },
    async (request, reply) => {
      const input = writeAsUser(boundUser(request.principal), request.body as CreateEventInput, 'body');
      const { event, replayed } = await events.create(input);
      if (replayed) void reply.header('idempotent-replayed', 'true');
      return reply.code(201).send(event);
    },
  );

  const BatchBodySchema = Type.Array(CreateEventSchema, { minItems: 1, maxItems: deps.batchMaxEvents });
  app.post(
    '/api/v1/events/batch',
    {
      attachValidation: true,
      preValidation: async (request) => {
        // The seed accepts both a bare array and {"events": [...]}.
        const body = request.body;
        if (
          body &&
          typeof body === 'object' &&
          !Array.isArray(body) &&
          'events' in body &&
          Object.keys(body).length === 1
        ) {
          request.body = body.events;
        }
      },
      schema: {
        tags: TAGS,
        summary: 'Create events in a batch',
        description: `Up to ${deps.batchMaxEvents} events, as an array or as \`{"events": [...]}\`. By default the batch is atomic: all are stored (201, the events in request order) or none (422 naming every bad index, or 409). With \`?partial=true\` each event stands alone and the answer is 207 with one outcome per event.`,
        querystring: BatchQuerySchema,
        body: BatchBodySchema,
        response: {
          201: Type.Array(EventSchema),
          207: PartialBatchResponseSchema,
          ...errorResponses(400, 409, 413, 415, 422, 503),
        },
      },
    },
    async (request, reply) => {
      // Fastify skips the query string once the body is invalid (and attachValidation lets the
      // handler run either way), so it is checked here, before `partial` decides anything.
      const query = { ...(request.query as object) };
      if (!validateBatchQuery(query)) {
        throw new ValidationError(toFieldProblems(validateBatchQuery.errors ?? [], 'querystring'));
      }
      const { partial } = query as Static<typeof BatchQuerySchema>;
      const body = request.body;
      const isBatch = Array.isArray(body) && body.length > 0 && body.length <= deps.batchMaxEvents;
      if (!partial) {
        if (request.validationError) {
          if (!isBatch) throw request.validationError;
          throw new ValidationError(body.flatMap(itemProblems));
        }
        const user = boundUser(request.principal);
        const inputs = (body as CreateEventInput[]).map((input, index) =>
          writeAsUser(user, input, `body[${index}]`),
        );
        const appended = await events.createBatch(inputs);
        return reply.code(201).send(appended.map((a) => a.event));
      }
      if (!isBatch) {
        throw (
          request.validationError ??
          new ValidationError([{ path: 'body', message: 'must be a non-empty array' }])
        );
      }
      const valid: { index: number; input: CreateEventInput }[] = [];
      const invalid = new Map<number, DomainError>();
      const user = boundUser(request.principal);
      body.forEach((item: unknown, index) => {
        if (validateItem(item)) {
          const input = item as CreateEventInput;
          const forbidden = foreignWrite(user, input, `body[${index}]`);
          if (forbidden) invalid.set(index, forbidden);
          else valid.push({ index, input: writeAsUser(user, input, `body[${index}]`) });
        } else
          invalid.set(
            index,
            new ValidationError(toFieldProblems(validateItem.errors ?? [], 'body', `body[${index}]`)),
          );
      });
      const outcomes = await events.createBatchPartial(valid);
      const byIndex = new Map<number, BatchItemOutcome>(outcomes.map((outcome) => [outcome.index, outcome]));
      let succeeded = 0;
      const items = body.map((_: unknown, index) => {
        const outcome = byIndex.get(index);
        if (outcome?.type === 'created') {
          succeeded++;
          return { index, status: outcome.appended.replayed ? 200 : 201, event: outcome.appended.event };
        }
        const mapped = fromDomainError(outcome?.error ?? invalid.get(index)!);
        return { index, status: mapped.status, error: mapped.body };
      });
      return reply.code(207).send({ results: items, succeeded, failed: items.length - succeeded });
    },
  );

  app.get(
    '/api/v1/events/:event_id',
    {
      schema: {
        tags: TAGS,
        summary: 'Get an event',
        description:
          'The whole event: data, metadata, context, properties, processing information and stream fields.',
        params: EventIdParamsSchema,
        response: { 200: EventSchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request) => {
      const { event_id } = request.params as Static<typeof EventIdParamsSchema>;
      const event = await store.getEvent(event_id);
      // Another user's event is "not found" to a user-bound principal: its existence is not confirmed.
      if (!event || !canSee(boundUser(request.principal), event.user_id)) {
        throw new NotFoundError(`Event not found: ${event_id}`);
      }
      return event;
    },
  );

  app.post(
    '/api/v1/events/query',
    {
      schema: {
        tags: TAGS,
        summary: 'Query events',
        description:
          'Filters are AND-combined. Newest first (by `timestamp`, then `position`). `has_more` tells whether another page exists; `next_cursor` gets it without the cost of a deep offset.',
        body: QueryEventsSchema,
        response: { 200: EventListSchema, ...errorResponses(400, 413, 415, 422, 503) },
      },
    },
    async (request) => {
      const {
        limit = 100,
        offset = 0,
        cursor,
        include_total = true,
        start_time,
        end_time,
        ...rest
      } = request.body as Static<typeof QueryEventsSchema>;
      const start = optionalDate(start_time);
      const end = optionalDate(end_time);
      checkRange(start, end, 'body');
      if (cursor !== undefined && offset !== 0) {
        throw new ValidationError([{ path: 'body.offset', message: 'must be 0 when cursor is given' }]);
      }
      const user_id = readFilterUser(boundUser(request.principal), rest.user_id, 'body.user_id');
      const page = await store.queryEvents(
        { ...rest, user_id, start_time: start, end_time: end },
        {
          limit,
          offset,
          cursor: cursor === undefined ? undefined : decodeCursor(cursor),
          includeTotal: include_total,
        },
      );
      return {
        events: page.events,
        total: page.total,
        limit,
        offset,
        has_more: page.hasMore,
        next_cursor: page.nextCursor ? encodeCursor(page.nextCursor) : null,
      };
    },
  );

  app.get(
    '/api/v1/events/statistics',
    {
      schema: {
        tags: TAGS,
        summary: 'Event statistics',
        description:
          'Counts by status, source, category and type; today / this week / this month (UTC); processing time and rates; top users and types. Optional user and time-range filters.',
        querystring: StatisticsQuerySchema,
        response: { 200: StatisticsSchema, ...errorResponses(422, 503) },
      },
    },
    async (request) => {
      const query = request.query as Static<typeof StatisticsQuerySchema>;
      const start = optionalDate(query.start_time);
      const end = optionalDate(query.end_time);
      checkRange(start, end, 'query');
      // A user-bound principal gets its own user's statistics.
      const user_id = readFilterUser(boundUser(request.principal), query.user_id, 'query.user_id');
      return store.statistics({ user_id, start_time: start, end_time: end });
    },
  );
}
