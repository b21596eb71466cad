/**
 * The one place that turns errors into HTTP responses: `{detail, code, errors?}`. Domain errors
 * map by type, Fastify's own errors (bad JSON, body too large, wrong content type, validation) by
 * code, and anything else is a 500 that is logged with its stack and never shown to the client.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  ConflictError,
  CredentialCheckUnavailableError,
  DomainError,
  ForbiddenError,
  IdempotencyConflictError,
  InvalidPayloadError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  StoreUnavailableError,
  UnauthorizedError,
  ValidationError,
  VersionConflictError,
  type FieldProblem,
} from '../domain/errors.js';
import { toFieldProblems } from './validation.js';

export interface ErrorBody {
  detail: string;
  code: string;
  errors?: FieldProblem[];
  [extra: string]: unknown;
}

export interface HttpError {
  status: number;
  body: ErrorBody;
  headers?: Record<string, string>;
}

const FASTIFY_ERRORS: Record<string, { status: number; code: string; detail?: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'malformed_json' },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    status: 400,
    code: 'malformed_json',
    detail: 'Body cannot be empty when content-type is application/json',
  },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'body_too_large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'unsupported_media_type' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'bad_request' },
  FST_ERR_CTP_INVALID_TYPE: { status: 400, code: 'bad_request' },
};

/** Maps any thrown value to a response; pure, so it is tested without a server. */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof DomainError) return fromDomainError(error);
  const fastifyError = error as Partial<FastifyError> & { validationContext?: string };
  if (fastifyError.validation) {
    const errors = toFieldProblems(
      fastifyError.validation as never,
      fastifyError.validationContext ?? 'body',
    );
    return fromDomainError(new ValidationError(errors));
  }
  if (typeof fastifyError.code === 'string') {
    const known = FASTIFY_ERRORS[fastifyError.code];
    if (known) {
      return {
        status: known.status,
        body: { detail: known.detail ?? fastifyError.message ?? known.code, code: known.code },
      };
    }
  }
  // SyntaxError from a JSON body parser that is not Fastify's own.
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return { status, body: { detail: fastifyError.message ?? 'Bad request', code: 'bad_request' } };
  }
  return { status: 500, body: { detail: 'Internal server error', code: 'internal_error' } };
}

export function fromDomainError(error: DomainError): HttpError {
  if (error instanceof ValidationError) {
    return { status: 422, body: { detail: error.message, code: error.code, errors: error.errors } };
  }
  if (error instanceof InvalidPayloadError) {
    return { status: 400, body: { detail: error.message, code: error.code, errors: error.errors } };
  }
  if (error instanceof UnauthorizedError) {
    return {
      status: 401,
      body: { detail: error.message, code: error.code },
      ...(error.challenge ? { headers: { 'www-authenticate': error.challenge } } : {}),
    };
  }
  if (error instanceof ForbiddenError)
    return { status: 403, body: { detail: error.message, code: error.code } };
  if (error instanceof RateLimitedError) {
    return {
      status: 429,
      body: { detail: error.message, code: error.code },
      headers: { 'retry-after': String(error.retryAfterSeconds) },
    };
  }
  if (error instanceof PayloadTooLargeError)
    return { status: 413, body: { detail: error.message, code: error.code } };
  if (error instanceof NotFoundError)
    return { status: 404, body: { detail: error.message, code: error.code } };
  if (error instanceof VersionConflictError) {
    return {
      status: 409,
      body: {
        detail: error.message,
        code: error.code,
        stream_id: error.streamId,
        expected_version: error.expected,
        actual_version: error.actual,
      },
    };
  }
  if (error instanceof IdempotencyConflictError) {
    return { status: 409, body: { detail: error.message, code: error.code, field: error.field } };
  }
  if (error instanceof ConflictError)
    return { status: 409, body: { detail: error.message, code: error.code } };
  if (error instanceof StoreUnavailableError || error instanceof CredentialCheckUnavailableError) {
    return {
      status: 503,
      body: { detail: error.message, code: error.code },
      headers: { 'retry-after': '1' },
    };
  }
  return { status: 400, body: { detail: error.message, code: error.code } };
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const mapped = toHttpError(error);
    if (
      mapped.status >= 500 &&
      !(error instanceof StoreUnavailableError || error instanceof CredentialCheckUnavailableError)
    ) {
      request.log.error({ err: error }, 'unhandled error');
    } else if (mapped.status >= 500) {
      request.log.warn({ err: error }, mapped.body.detail);
    }
    if (mapped.headers) void reply.headers(mapped.headers);
    return reply.code(mapped.status).type('application/json').send(mapped.body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      detail: `Route ${request.method} ${request.url.split('?')[0]} not found`,
      code: 'route_not_found',
    }),
  );
}
