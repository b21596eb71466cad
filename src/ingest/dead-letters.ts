/**
 * Admin: messages an ingest channel could not turn into events (unparseable, invalid, refused),
 * newest first. Needs the admin scope (src/auth/policy.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import { errorResponses } from '../http/schema-helpers.js';
import { guarded, type Db } from '../store/db.js';
import { listDeadLetters } from '../store/outbox.js';
import { DeadLetterListSchema, DeadLetterQuerySchema } from './frontend-schemas.js';

export async function deadLetterRoutes(app: FastifyInstance, deps: { db: Db }): Promise<void> {
  app.get(
    '/api/v1/events/dead-letters',
    {
      schema: {
        tags: ['admin'],
        summary: 'List dead letters of the ingest channels',
        description:
          'Messages that could not become events (e.g. a NATS message that is not JSON or has no type), kept with their subject, message id, payload, headers and the reason, instead of being retried forever or dropped. Newest first; `channel` filters (`nats`). Admin endpoint.',
        querystring: DeadLetterQuerySchema,
        response: { 200: DeadLetterListSchema, ...errorResponses(422, 503) },
      },
    },
    async (request) => {
      const { channel, limit = 100, offset = 0 } = request.query as Static<typeof DeadLetterQuerySchema>;
      const { items, total } = await guarded(() => listDeadLetters(deps.db, { channel, limit, offset }));
      return { items, total: Number(total), limit, offset };
    },
  );
}
