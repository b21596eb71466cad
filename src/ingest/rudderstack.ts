/**
 * Endpoint 19: the RudderStack webhook. RudderStack's webhook destination posts one message (or,
 * in its "HTTP Webhook" variant, an array) and decides by the status code: 5xx, 408 and 429 are
 * retried, any other 4xx drops the message for good. So: 200 only after the commit, 400 only for
 * what can never succeed, 503 when the store is down (it retries, `messageId` dedupes).
 */
import type { FastifyInstance } from 'fastify';
import { InvalidPayloadError, PayloadTooLargeError, UnauthorizedError } from '../domain/errors.js';
import { errorResponses } from '../http/schema-helpers.js';
import { webhookAuthorized } from './auth.js';
import { acceptJsonBodies } from './body.js';
import { WebhookBodySchema, WebhookResponseSchema } from './segment-schemas.js';
import { rejectedReport, type SegmentIngest } from './segment-ingest.js';
import { IngestChannel } from './segment.js';

export interface RudderstackRoutesDeps {
  ingest: SegmentIngest;
  /** `RUDDERSTACK_WEBHOOK_SECRET`; undefined: no check. */
  secret: string | undefined;
  /** Most messages in one array (`BATCH_MAX_EVENTS`). */
  maxMessages: number;
  /** Largest body after decompression (`BODY_LIMIT_BYTES`). */
  maxBodyBytes: number;
  now: () => Date;
}

export async function rudderstackRoutes(app: FastifyInstance, deps: RudderstackRoutesDeps): Promise<void> {
  acceptJsonBodies(app, deps.maxBodyBytes);
  // Before the body is read: an unauthenticated request costs no decompression.
  app.addHook('onRequest', async (request) => {
    if (!webhookAuthorized(request.headers, deps.secret)) {
      throw new UnauthorizedError(
        'Missing or wrong webhook secret: send it in X-Signature, as a Bearer token or as the Basic-auth password',
      );
    }
  });

  app.post(
    '/webhooks/rudderstack',
    {
      schema: {
        tags: ['ingest'],
        summary: 'RudderStack webhook',
        description: `One Segment-spec message (track, page, screen, identify, group, alias) or an array of at most ${deps.maxMessages}; JSON, gzip allowed. When \`RUDDERSTACK_WEBHOOK_SECRET\` is set the request must carry it in \`X-Signature\`, as \`Authorization: Bearer <secret>\` or as the Basic-auth password (else 401). Each message becomes one event (source \`frontend\`; event type = \`event\` for track, else the type; category page_view / form_submit / click / user_action; user_id = userId or anonymousId; original ids and timestamps in metadata). \`messageId\` is the idempotency key (\`segment:<messageId>\`): a retry stores nothing twice. 200 only once the events are committed; messages that can never be stored are listed in \`rejected\`, and when no message can be stored the answer is 400 (RudderStack drops it). 503 when the store is unavailable (RudderStack retries).`,
        body: WebhookBodySchema(deps.maxMessages),
        response: { 200: WebhookResponseSchema, ...errorResponses(400, 401, 413, 503) },
      },
      // Documented by the schema, checked message by message in the ingest service: one bad
      // message must not fail the others, and what fails is a 400, not a 422.
      validatorCompiler: () => () => true,
    },
    async (request, reply) => {
      const receivedAt = deps.now();
      const body: unknown = request.body;
      const isArray = Array.isArray(body);
      if (isArray) {
        if (body.length === 0) {
          throw new InvalidPayloadError([{ path: 'body', message: 'must contain at least one message' }]);
        }
        if (body.length > deps.maxMessages) {
          throw new PayloadTooLargeError(`At most ${deps.maxMessages} messages in one request`);
        }
      } else if (body === null || typeof body !== 'object') {
        throw new InvalidPayloadError([
          { path: 'body', message: 'must be a JSON object or an array of objects' },
        ]);
      }
      const outcomes = await deps.ingest.ingest({
        messages: isArray ? body : [body],
        channel: IngestChannel.RUDDERSTACK_WEBHOOK,
        path: (index) => (isArray ? `body[${index}]` : 'body'),
        receivedAt,
      });
      const rejected = rejectedReport(outcomes);
      if (rejected.length > 0) {
        request.log.warn(
          { rejected_count: rejected.length, rejected: rejected.slice(0, 10) },
          'RudderStack messages rejected',
        );
      }
      const eventIds = outcomes.flatMap((outcome) => (outcome.type === 'stored' ? [outcome.eventId] : []));
      return reply.code(200).send({
        status: 'accepted',
        count: eventIds.length,
        event_ids: eventIds,
        ...(rejected.length > 0 ? { rejected } : {}),
      });
    },
  );
}
