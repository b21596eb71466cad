/**
 * What a call can fail with: `EventServiceError` when the service answered with an error status,
 * `NetworkError` (and its `TimeoutError`) when no answer came, `ClientClosedError` after `close()`.
 * A call aborted through its own `signal` rejects with the signal's reason, as `fetch` does.
 */

/** One invalid field of a 422 (or a 400 of the Segment-style channels). */
export interface FieldProblem {
  /** Where: `body.event_type`, `body[3].data`, `query.limit` … */
  path: string;
  message: string;
}

/** The JSON error body of the service: `{detail, code, errors?, …}` plus per-code fields. */
export interface ErrorBody {
  detail: string;
  code: string;
  errors?: FieldProblem[];
  [field: string]: unknown;
}

/** The service answered with an error status (4xx, 5xx). */
export class EventServiceError extends Error {
  override readonly name = 'EventServiceError';
  /** HTTP status. */
  readonly status: number;
  /** Stable machine-readable code: `validation_failed`, `not_found`, `version_conflict`, … */
  readonly code: string;
  /** What went wrong, for people. */
  readonly detail: string;
  /** Every invalid field, for validation failures; else empty. */
  readonly errors: FieldProblem[];
  /** Seconds the service asked to wait (`Retry-After` of a 429 or 503); undefined without one. */
  readonly retryAfter: number | undefined;
  /** The whole error body, with per-code fields (e.g. `actual_version` of a `version_conflict`). */
  readonly body: ErrorBody;
  /** `X-Request-Id` of the answer, when the service sent one: quote it when asking operators. */
  readonly requestId: string | undefined;
  /** HTTP method and path of the request. */
  readonly method: string;
  readonly path: string;
  /** Attempts made, retries included. */
  readonly attempts: number;

  constructor(init: {
    status: number;
    body: ErrorBody;
    retryAfter?: number | undefined;
    requestId?: string | undefined;
    method: string;
    path: string;
    attempts: number;
  }) {
    super(`${init.method} ${init.path}: ${init.status} ${init.body.code}: ${init.body.detail}`);
    this.status = init.status;
    this.code = init.body.code;
    this.detail = init.body.detail;
    this.errors = Array.isArray(init.body.errors) ? init.body.errors : [];
    this.retryAfter = init.retryAfter;
    this.body = init.body;
    this.requestId = init.requestId;
    this.method = init.method;
    this.path = init.path;
    this.attempts = init.attempts;
  }
}

/** No answer: the connection failed, was reset or closed before the answer was complete. */
export class NetworkError extends Error {
  override readonly name: string = 'NetworkError';
  /**
   * The system or undici error code (`ECONNREFUSED`, `ECONNRESET`, `UND_ERR_SOCKET`, …), or
   * `TIMEOUT` for a `TimeoutError`.
   */
  readonly code: string;
  /** HTTP method and path of the request. */
  readonly method: string;
  readonly path: string;
  /** Attempts made, retries included. */
  readonly attempts: number;
  /**
   * False when the request certainly never reached the service (connection refused, host not
   * found, connect timeout): then not even a non-idempotent request had any effect.
   */
  readonly requestSent: boolean;

  constructor(
    message: string,
    init: {
      code: string;
      method: string;
      path: string;
      attempts: number;
      requestSent: boolean;
      cause?: unknown;
    },
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.method = init.method;
    this.path = init.path;
    this.attempts = init.attempts;
    this.requestSent = init.requestSent;
  }
}

/** No complete answer within the request's timeout, or the call's deadline passed. */
export class TimeoutError extends NetworkError {
  override readonly name = 'TimeoutError';
}

/** The client was closed (`close()`, or the end of an `await using` block) before or during the call. */
export class ClientClosedError extends Error {
  override readonly name = 'ClientClosedError';
  constructor() {
    super('The EventServiceClient is closed');
  }
}

/** True when `error` is an `EventServiceError` (with that `code`, when one is given). */
export function isEventServiceError(error: unknown, code?: string): error is EventServiceError {
  return error instanceof EventServiceError && (code === undefined || error.code === code);
}
