/**
 * Endpoint 8 of the seed contract, replay, and what a replay's user needs besides: progress, the
 * list of replays, cancel, and the results of a reprocessing replay. Thin: validate, call the
 * service, answer. All need the admin scope (src/auth/policy.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import { errorResponses } from '../http/schema-helpers.js';
import {
  DRY_RUN_IDS,
  DryRunResponseSchema,
  MAX_EVENT_IDS,
  ReplayIdParamsSchema,
  ReplayJobSchema,
  ReplayListQuerySchema,
  ReplayListSchema,
  ReplayRequestSchema,
  ReplayResultsQuerySchema,
  ReplayResultsSchema,
  ReplayStartedSchema,
} from './schemas.js';
import type { ReplayRequest } from './selection.js';
import type { ReplayService } from './service.js';

const TAGS = ['replay'];
const BASE = '/api/v1/events/replay';

export async function replayRoutes(app: FastifyInstance, deps: { replays: ReplayService }): Promise<void> {
  const { replays } = deps;

  app.post(
    BASE,
    {
      schema: {
        tags: TAGS,
        summary: 'Replay events',
        description:
          `Republishes stored events, in their original order (global position), to \`event.replayed.{target_service}\` (default \`all\`), and with \`reprocess: true\` runs the enabled processors matching each of them again, recording new processing results; the events themselves are not changed. ` +
          `The events: \`event_ids\` (at most ${MAX_EVENT_IDS.toLocaleString('en-US')}), \`stream_id\`, or \`start_time\` with \`end_time\` (inclusive); when several are given, every one must hold; \`event_type\` and \`event_source\` narrow them. Only events stored before the request are replayed. ` +
          `\`dry_run: true\` answers 200 with the exact count and the first ${DRY_RUN_IDS.toLocaleString('en-US')} ids, and changes nothing. Otherwise a job starts in the background: 202 with its \`replay_id\` (follow it with GET …/replay/{replay_id}); \`event.replay.started\` and, at its end, \`event.replay.completed\` are published. Each replayed message carries the whole stored event, with \`Nats-Msg-Id\` \`{replay_id}:{event_id}\`. A job survives restarts: it resumes where it stopped.`,
        body: ReplayRequestSchema,
        response: {
          200: DryRunResponseSchema,
          202: ReplayStartedSchema,
          ...errorResponses(400, 413, 415, 422, 503),
        },
      },
    },
    async (request, reply) => {
      const answer = await replays.start(request.body as ReplayRequest);
      return reply.code(answer.dry_run ? 200 : 202).send(answer);
    },
  );

  app.get(
    BASE,
    {
      schema: {
        tags: TAGS,
        summary: 'List replays',
        description: 'Newest first; `?status=` filters.',
        querystring: ReplayListQuerySchema,
        response: { 200: ReplayListSchema, ...errorResponses(422, 503) },
      },
    },
    async (request) => {
      const { status, limit = 100, offset = 0 } = request.query as Static<typeof ReplayListQuerySchema>;
      const { items, total } = await replays.list({ status, limit, offset });
      return { replays: items, total, limit, offset, has_more: offset + items.length < total };
    },
  );

  app.get(
    `${BASE}/:replay_id`,
    {
      schema: {
        tags: TAGS,
        summary: "A replay's progress",
        description:
          '`status`, `total`, `replayed`, `failed`, `started_at`, `finished_at`; `error` says why a replay failed, or what it is waiting out.',
        params: ReplayIdParamsSchema,
        response: { 200: ReplayJobSchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request) => replays.get((request.params as Static<typeof ReplayIdParamsSchema>).replay_id),
  );

  app.delete(
    `${BASE}/:replay_id`,
    {
      schema: {
        tags: TAGS,
        summary: 'Cancel a replay',
        description:
          'A queued or running replay becomes `cancelled` and `event.replay.completed` is published with its counts. The instance working on it stops before its next page (a page it is publishing still completes and is counted). 409 when the replay has ended already.',
        params: ReplayIdParamsSchema,
        response: { 200: ReplayJobSchema, ...errorResponses(404, 409, 422, 503) },
      },
    },
    async (request) => replays.cancel((request.params as Static<typeof ReplayIdParamsSchema>).replay_id),
  );

  app.get(
    `${BASE}/:replay_id/results`,
    {
      schema: {
        tags: TAGS,
        summary: 'Processing results of a reprocessing replay',
        description:
          'One row per event and processor the replay ran, in the order they were recorded (`?status=failed` for the failures).',
        params: ReplayIdParamsSchema,
        querystring: ReplayResultsQuerySchema,
        response: { 200: ReplayResultsSchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request) => {
      const { replay_id } = request.params as Static<typeof ReplayIdParamsSchema>;
      const { status, limit = 100, offset = 0 } = request.query as Static<typeof ReplayResultsQuerySchema>;
      const page = await replays.results(replay_id, { status, limit, offset });
      return {
        replay_id,
        results: page.results,
        total: page.total,
        limit,
        offset,
        has_more: offset + page.results.length < page.total,
      };
    },
  );
}
