/**
 * Endpoints 16-18: the public frontend collector. No credentials; CORS for browsers; JSON bodies
 * sent as `application/json` or as `text/plain` (what `navigator.sendBeacon` sends for a string);
 * body and batch-size limits; a per-client rate limit (429 + `Retry-After`) keyed by the client IP
 * (`X-Forwarded-For` believed only from `TRUSTED_PROXIES`). Register with the prefix
 * `/api/v1/events/frontend`: the CORS plugin's preflight route then stays inside it.
 */
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { RateLimitedError, ValidationError, type FieldProblem } from '../domain/errors.js';
import type { JsonObject } from '../domain/event.js';
import { errorResponses } from '../http/schema-helpers.js';
import { toEvent } from './backend.js';
import { clientIp, type TrustedProxies } from './client-ip.js';
import type { CollectedEvent, Durability, FrontendCollector } from './frontend-collector.js';
import { toFrontendInput, type FrontendEventBody, type RequestClient } from './frontend-model.js';
import {
  FrontendAcceptedSchema,
  FrontendBatchAcceptedSchema,
  FrontendBatchSchema,
  FrontendEventSchema,
  FrontendHealthSchema,
} from './frontend-schemas.js';

export const FRONTEND_PREFIX = '/api/v1/events/frontend';

export interface FrontendRoutesDeps {
  collector: FrontendCollector;
  /** True when the bus is NATS and connected (for the health answer). */
  natsConnected: () => boolean;
  trustedProxies: TrustedProxies;
  /** `FRONTEND_BODY_LIMIT_BYTES`. */
  bodyLimitBytes: number;
  /** `FRONTEND_BATCH_MAX_EVENTS`. */
  batchMaxEvents: number;
  /** `FRONTEND_RATE_LIMIT_PER_MINUTE`; 0 turns the limit off. */
  rateLimitPerMinute: number;
  /** `FRONTEND_CORS_ORIGINS`: `*` (any) or the allowed origins. */
  corsOrigins: readonly string[];
  now: () => Date;
}

const TAGS = ['frontend'];

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const MESSAGES: Record<Durability, string> = {
  stream: 'Event published to stream',
  store: 'Event stored',
};

export async function frontendRoutes(app: FastifyInstance, deps: FrontendRoutesDeps): Promise<void> {
  const ipOf = (request: FastifyRequest) =>
    clientIp(request.socket.remoteAddress, request.headers['x-forwarded-for'], deps.trustedProxies);
  const clientOf = (request: FastifyRequest): RequestClient => ({
    ip: ipOf(request),
    userAgent: header(request, 'user-agent'),
    referer: header(request, 'referer'),
  });

  // navigator.sendBeacon(url, string) sends `text/plain;charset=UTF-8`: JSON all the same, on
  // these routes only (the rest of the API answers 415 to text/plain).
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, parseJson);

  const anyOrigin = deps.corsOrigins.includes('*');
  await app.register(cors, {
    origin: anyOrigin ? '*' : [...deps.corsOrigins],
    methods: ['GET', 'POST', 'OPTIONS'],
    maxAge: 86_400,
  });
  // The CORS plugin's preflight route is `<prefix>/*`, which does not match the prefix itself.
  app.options('', { schema: { hide: true } }, async (_request, reply) => reply.code(204).send());

  if (deps.rateLimitPerMinute > 0) {
    await app.register(rateLimit, {
      global: true,
      max: deps.rateLimitPerMinute,
      timeWindow: 60_000,
      keyGenerator: ipOf,
      errorResponseBuilder: (_request, context) =>
        new RateLimitedError(
          `Rate limit exceeded: at most ${context.max} requests a minute per client; retry in ${context.after}`,
          Math.max(1, Math.ceil(context.ttl / 1000)),
        ),
    });
  }

  /** Maps and checks every event before anything is sent anywhere: all accepted or none. */
  const prepare = (
    events: FrontendEventBody[],
    clientInfo: JsonObject | null | undefined,
    request: FastifyRequest,
    path: (index: number) => string,
  ): CollectedEvent[] => {
    const client = clientOf(request);
    const receivedAt = deps.now();
    const problems: FieldProblem[] = [];
    const prepared: CollectedEvent[] = [];
    events.forEach((body, index) => {
      const item = toFrontendInput(body, clientInfo, client, receivedAt);
      // Stored directly, an event whose id the collector chose cannot come twice: no repeat
      // lookup, no content hash (the collector makes it repeatable again if it takes both roads).
      const { event_id: eventId, ...rest } = item.input;
      const mapped = item.idGenerated
        ? toEvent(rest, receivedAt, path(index), { serverEventId: eventId })
        : toEvent(item.input, receivedAt, path(index));
      if (mapped.ok) prepared.push({ ...item, event: mapped.event });
      else problems.push(...(mapped.problems ?? [{ path: path(index), message: mapped.error }]));
    });
    if (problems.length > 0) throw new ValidationError(problems);
    return prepared;
  };

  const accepts = 'JSON, as `application/json` or `text/plain` (what `navigator.sendBeacon` sends)';

  app.post(
    '',
    {
      bodyLimit: deps.bodyLimitBytes,
      schema: {
        tags: TAGS,
        summary: 'Collect a frontend event',
        description: `Public (no credentials), CORS-enabled, rate-limited per client IP (${deps.rateLimitPerMinute || 'no'} requests a minute; 429 with \`Retry-After\`). Body: ${accepts}, at most ${deps.bodyLimitBytes} bytes. The event is stored with source \`frontend\`; its metadata gets \`page_url\`, \`client_ip\` (\`X-Forwarded-For\` believed only from trusted proxies), \`user_agent\` and \`referer\` as the server saw them. "accepted" is answered only once the event is durable: published to JetStream (\`events.frontend.{category}.{event_type}\`, stored from there by a durable consumer) when NATS is configured and up, else committed to the store.`,
        body: FrontendEventSchema,
        response: {
          200: FrontendAcceptedSchema,
          ...errorResponses(400, 409, 413, 415, 422, 429, 503),
        },
      },
    },
    async (request) => {
      const [event] = prepare([request.body as FrontendEventBody], null, request, () => 'body');
      const durability = await deps.collector.collect([event!]);
      return { status: 'accepted', event_id: event!.input.event_id, message: MESSAGES[durability] };
    },
  );

  const BatchSchema = FrontendBatchSchema(deps.batchMaxEvents);
  app.post(
    '/batch',
    {
      bodyLimit: deps.bodyLimitBytes,
      schema: {
        tags: TAGS,
        summary: 'Collect frontend events in a batch',
        description: `Up to ${deps.batchMaxEvents} events as \`{"events": [...], "client_info": {...}}\`; \`client_info\` is merged into each event's metadata (the event's own metadata wins on a clash; what the server captured wins over both). Body: ${accepts}, at most ${deps.bodyLimitBytes} bytes. All events are accepted or none (422 naming every bad one); rate limit and durability as for a single event.`,
        body: BatchSchema,
        response: {
          200: FrontendBatchAcceptedSchema,
          ...errorResponses(400, 409, 413, 415, 422, 429, 503),
        },
      },
    },
    async (request) => {
      const body = request.body as Static<typeof BatchSchema>;
      const prepared = prepare(body.events, body.client_info, request, (index) => `body.events[${index}]`);
      const durability = await deps.collector.collect(prepared);
      return {
        status: 'accepted',
        count: prepared.length,
        event_ids: prepared.map((e) => e.input.event_id),
        message: durability === 'stream' ? 'Events published to stream' : 'Events stored',
      };
    },
  );

  app.get(
    '/health',
    {
      config: { rateLimit: false },
      schema: {
        tags: TAGS,
        summary: 'Frontend collection health',
        description:
          '`nats_connected` is true when NATS is configured and connected; without it events are committed to the store directly, so the collector stays healthy.',
        response: { 200: FrontendHealthSchema },
      },
    },
    async () => ({
      status: 'healthy',
      service: 'frontend-event-collection' as const,
      nats_connected: deps.natsConnected(),
      timestamp: deps.now().toISOString(),
    }),
  );
}
