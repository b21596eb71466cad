/**
 * The tracking API of Segment and RudderStack (`/v1/track`, `/v1/page`, …, `/v1/batch`), so that
 * their SDKs can send here unchanged: write key as the Basic-auth username (or `writeKey` in the
 * body), gzip bodies, Segment's size limits, `messageId` dedupe, clock-skew correction, and
 * Segment's answer `{"success": true}` once the events are committed.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { InvalidPayloadError, PayloadTooLargeError, UnauthorizedError } from '../domain/errors.js';
import type { JsonObject } from '../domain/event.js';
import { errorResponses } from '../http/schema-helpers.js';
import { bodyWriteKey, headerWriteKey, isOneOf } from './auth.js';
import { acceptJsonBodies } from './body.js';
import { TrackingBatchSchema, TrackingMessageSchema, TrackingResponseSchema } from './segment-schemas.js';
import { rejectedReport, type MessageOutcome, type SegmentIngest } from './segment-ingest.js';
import { IngestChannel, SEGMENT_TYPES } from './segment.js';

export interface TrackingRoutesDeps {
  ingest: SegmentIngest;
  /** `WRITE_KEYS`; empty: every request is a 401. */
  writeKeys: readonly string[];
  /** Most messages in one batch (`BATCH_MAX_EVENTS`). */
  maxMessages: number;
  /** Largest message, JSON bytes (`TRACKING_MAX_MESSAGE_BYTES`, Segment: 32 KB). */
  maxMessageBytes: number;
  /** Largest body after decompression (`TRACKING_MAX_BATCH_BYTES`, Segment: 500 KB). */
  maxBatchBytes: number;
  now: () => Date;
}

const CHALLENGE = 'Basic realm="tracking"';
const TAGS = ['ingest'];

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A message without the write key, which is a credential and never stored. */
function withoutWriteKey(value: unknown): unknown {
  if (!isObject(value) || !Object.hasOwn(value, 'writeKey')) return value;
  const { writeKey: _writeKey, ...rest } = value;
  return rest;
}

function answer(request: FastifyRequest, outcomes: MessageOutcome[]) {
  const rejected = rejectedReport(outcomes);
  if (rejected.length === 0) return { success: true as const };
  request.log.warn(
    { rejected_count: rejected.length, rejected: rejected.slice(0, 10) },
    'tracking messages rejected',
  );
  return { success: true as const, rejected };
}

export async function trackingRoutes(app: FastifyInstance, deps: TrackingRoutesDeps): Promise<void> {
  acceptJsonBodies(app, deps.maxBatchBytes);
  app.addHook('onRequest', async () => {
    if (deps.writeKeys.length === 0) {
      throw new UnauthorizedError(
        'The tracking API is off: no write key is configured (WRITE_KEYS)',
        CHALLENGE,
      );
    }
  });
  // After parsing: the write key may be in the body.
  app.addHook('preHandler', async (request) => {
    const candidates = [headerWriteKey(request.headers), bodyWriteKey(request.body)];
    if (!candidates.some((key) => key !== null && isOneOf(key, deps.writeKeys))) {
      throw new UnauthorizedError(
        'Missing or unknown write key: send it as the Basic-auth username or as writeKey',
        CHALLENGE,
      );
    }
  });

  const responses = { 200: TrackingResponseSchema, ...errorResponses(400, 401, 413, 503) };
  // Documented by the schemas, checked message by message in the ingest service.
  const noValidation = () => () => true;

  for (const type of SEGMENT_TYPES) {
    app.post(
      `/v1/${type}`,
      {
        schema: {
          tags: TAGS,
          summary: `Tracking API: ${type}`,
          description: `One \`${type}\` message of the Segment spec (the path sets \`type\`). Write key as the Basic-auth username (empty password) or \`writeKey\` in the body, else 401. JSON, gzip allowed; at most ${deps.maxMessageBytes} bytes. Answers \`{"success": true}\` once the event is committed; 400 when the message can never be stored.`,
          body: TrackingMessageSchema,
          response: responses,
        },
        validatorCompiler: noValidation,
      },
      async (request) => {
        const receivedAt = deps.now();
        const body: unknown = request.body;
        if (!isObject(body)) {
          throw new InvalidPayloadError([{ path: 'body', message: 'must be a JSON object' }]);
        }
        const outcomes = await deps.ingest.ingest({
          messages: [{ ...(withoutWriteKey(body) as JsonObject), type }],
          channel: IngestChannel.TRACKING_API,
          path: () => 'body',
          receivedAt,
          maxMessageBytes: deps.maxMessageBytes,
        });
        return answer(request, outcomes);
      },
    );
  }

  app.post(
    '/v1/batch',
    {
      schema: {
        tags: TAGS,
        summary: 'Tracking API: batch',
        description: `\`{"batch": [...], "context"?, "sentAt"?}\` with at most ${deps.maxMessages} messages and ${deps.maxBatchBytes} bytes (after gzip decompression; more is a 413). The batch's \`context\` is merged under each message's, its \`sentAt\` used for messages without their own. Each message stands alone: one larger than ${deps.maxMessageBytes} bytes or invalid is listed in \`rejected\` and the others are stored; 400 when none can be. A message without \`timestamp\` gets \`receivedAt - (sentAt - originalTimestamp)\` (clock-skew correction).`,
        body: TrackingBatchSchema(deps.maxMessages),
        response: responses,
      },
      validatorCompiler: noValidation,
    },
    async (request) => {
      const receivedAt = deps.now();
      const body: unknown = request.body;
      if (!isObject(body) || !Array.isArray(body.batch)) {
        throw new InvalidPayloadError([{ path: 'body.batch', message: 'must be an array of messages' }]);
      }
      const messages: unknown[] = body.batch;
      if (messages.length === 0) {
        throw new InvalidPayloadError([{ path: 'body.batch', message: 'must contain at least one message' }]);
      }
      if (messages.length > deps.maxMessages) {
        throw new PayloadTooLargeError(`At most ${deps.maxMessages} messages in one batch`);
      }
      const outcomes = await deps.ingest.ingest({
        messages: messages.map(withoutWriteKey),
        channel: IngestChannel.TRACKING_API,
        path: (index) => `body.batch[${index}]`,
        receivedAt,
        batch: { context: isObject(body.context) ? body.context : null, sentAt: body.sentAt },
        maxMessageBytes: deps.maxMessageBytes,
      });
      return answer(request, outcomes);
    },
  );
}
