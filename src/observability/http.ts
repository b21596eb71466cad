/**
 * Observability of HTTP requests, as hooks on the root instance:
 * - `X-Request-Id`: an incoming one that is sane is the request's id (`genReqId` below), else one
 *   is generated; it is logged as `request_id` and echoed in the answer.
 * - `correlation_id` on the request's logs: from `X-Correlation-Id` (every line), else the body's
 *   `correlation_id` (from the handler on).
 * - W3C trace context: the active OpenTelemetry span when tracing is on (its context is what the
 *   service passes on), else a valid incoming `traceparent` (and `tracestate`), carried unchanged;
 *   the handler runs inside the app's `TraceScope` with it, so that what it stores carries it.
 * - `event_service_http_request_duration_seconds{method, route, status_code}`, route = the route
 *   pattern (`/api/v1/events/:event_id`), `unmatched` for a 404 without a route.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TraceScope } from './ingest.js';
import type { Metrics } from './metrics.js';
import { traceContextOf, type TraceContext } from './trace-context.js';
import { activeSpanTrace, nameActiveSpan } from './tracing.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The trace context the request is handled in (null without one). */
    traceContext: TraceContext | null;
    /** The correlation id on the request's logs (null without one). */
    correlationId: string | null;
  }
}

/** Longest request id taken from a client. */
export const REQUEST_ID_MAX = 128;
/** Longest correlation id put on logs (the events' `correlation_id` allows as much). */
export const CORRELATION_ID_MAX = 255;

/** A client-given id worth keeping: printable ASCII without spaces, within `max` characters. */
export function saneId(value: unknown, max: number): string | null {
  return typeof value === 'string' && value.length > 0 && value.length <= max && /^[\x21-\x7e]+$/.test(value)
    ? value
    : null;
}

/** The request id: the client's `X-Request-Id` when it is sane, else a new UUID (Fastify's `genReqId`). */
export function genReqId(request: IncomingMessage): string {
  return saneId(request.headers['x-request-id'], REQUEST_ID_MAX) ?? randomUUID();
}

/**
 * Fastify's `childLoggerFactory`: the request's logger carries `correlation_id` from
 * `X-Correlation-Id` from its first line ("incoming request") on.
 */
export function childLoggerFactory(
  logger: FastifyBaseLogger,
  bindings: Record<string, unknown>,
  options: object,
  request: IncomingMessage,
): FastifyBaseLogger {
  const correlationId = saneId(request.headers['x-correlation-id'], CORRELATION_ID_MAX);
  return logger.child(correlationId ? { ...bindings, correlation_id: correlationId } : bindings, options);
}

function setCorrelation(request: FastifyRequest, reply: FastifyReply, correlationId: string): void {
  request.correlationId = correlationId;
  request.log = request.log.child({ correlation_id: correlationId });
  // Fastify logs the answer ("request completed") through the reply's logger.
  reply.log = request.log;
}

function bodyCorrelationId(body: unknown): string | null {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return null;
  return saneId((body as { correlation_id?: unknown }).correlation_id, CORRELATION_ID_MAX);
}

export function registerRequestObservability(
  app: FastifyInstance,
  deps: { metrics: Metrics; traces: TraceScope },
): void {
  const { metrics, traces } = deps;
  app.decorateRequest('traceContext', null);
  app.decorateRequest('correlationId', null);

  app.addHook('onRequest', (request, reply, done) => {
    void reply.header('x-request-id', request.id);
    // Already on the request's logger (childLoggerFactory).
    request.correlationId = saneId(request.headers['x-correlation-id'], CORRELATION_ID_MAX);
    nameActiveSpan(request.method, request.routeOptions.url);
    request.traceContext =
      activeSpanTrace() ?? traceContextOf(request.headers.traceparent, request.headers.tracestate);
    done();
  });

  // Last hook before the handler, which (with what it starts) runs inside the trace scope.
  app.addHook('preHandler', (request, reply, done) => {
    if (request.correlationId === null) {
      const correlationId = bodyCorrelationId(request.body);
      if (correlationId) setCorrelation(request, reply, correlationId);
    }
    // Entering the scope turns on Node 20's async hooks for the whole process (every promise then
    // pays for them: ~15 % of the service's CPU per create, measured), so only a request that has
    // a trace context enters it; without one there is nothing to carry.
    if (request.traceContext === null) done();
    else traces.run(request.traceContext, done);
  });

  app.addHook('onResponse', (request, reply, done) => {
    metrics.httpRequestDuration.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status_code: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
    done();
  });
}
