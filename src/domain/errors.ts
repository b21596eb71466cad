/**
 * Typed domain errors with stable codes. Handlers and services throw these; exactly one place
 * (src/http/errors.ts) turns them into HTTP responses.
 */

export interface FieldProblem {
  /** Where the problem is, e.g. `body.events[3].event_type` or `query.limit`. */
  path: string;
  message: string;
}

export abstract class DomainError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class ValidationError extends DomainError {
  readonly code = 'validation_failed';
  constructor(
    readonly errors: FieldProblem[],
    message = `Validation failed: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`,
  ) {
    super(message);
  }
}

export class NotFoundError extends DomainError {
  readonly code = 'not_found';
}

/** Optimistic concurrency: the stream is not at the version the writer expected. */
export class VersionConflictError extends DomainError {
  readonly code = 'version_conflict';
  constructor(
    readonly streamId: string,
    readonly expected: string | number,
    readonly actual: number,
  ) {
    super(`Stream ${streamId} is at version ${actual}, expected ${String(expected)}`);
  }
}

/** An event id or idempotency key that is already stored with different content. */
export class IdempotencyConflictError extends DomainError {
  readonly code = 'idempotency_conflict';
  constructor(
    readonly field: 'event_id' | 'idempotency_key',
    readonly value: string,
  ) {
    super(`${field} ${JSON.stringify(value)} is already used by an event with different content`);
  }
}

export class ConflictError extends DomainError {
  readonly code = 'conflict';
}

/** The store cannot be reached or did not answer in time; the caller may retry. */
export class StoreUnavailableError extends DomainError {
  readonly code = 'store_unavailable';
}

/**
 * A payload that can never be accepted however often it is sent again (the ingest channels answer
 * 400, which senders such as RudderStack treat as "drop, do not retry").
 */
export class InvalidPayloadError extends DomainError {
  readonly code = 'invalid_payload';
  constructor(
    readonly errors: FieldProblem[],
    message = `Invalid payload: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`,
  ) {
    super(message);
  }
}

/** A request without the credential its channel needs; `challenge` becomes `WWW-Authenticate`. */
export class UnauthorizedError extends DomainError {
  readonly code = 'unauthorized';
  constructor(
    message: string,
    readonly challenge?: string,
  ) {
    super(message);
  }
}

/** A valid credential without the scope a request needs, or acting for another user. */
export class ForbiddenError extends DomainError {
  readonly code = 'forbidden';
}

/** A credential that cannot be checked now (the JWKS of the identity provider did not answer). */
export class CredentialCheckUnavailableError extends DomainError {
  readonly code = 'auth_unavailable';
}

/** A body larger than the channel accepts (after decompression), or too many items in it. */
export class PayloadTooLargeError extends DomainError {
  readonly code = 'body_too_large';
}

/** Too many requests from one client; `retryAfterSeconds` becomes `Retry-After`. */
export class RateLimitedError extends DomainError {
  readonly code = 'rate_limited';
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}
