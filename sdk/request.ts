/**
 * The one function every call of the client goes through: builds the HTTP request, sends it with
 * undici under a per-attempt timeout and the call's deadline, maps the answer or the failure to a
 * value or a typed error, and retries what `retry.ts` says is retryable.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request, type Dispatcher } from 'undici';
import {
  ClientClosedError,
  EventServiceError,
  NetworkError,
  TimeoutError,
  type ErrorBody,
} from './errors.js';
import {
  NOT_SENT_CODES,
  decideRetry,
  parseRetryAfter,
  resolveRetry,
  type ResolvedRetryOptions,
  type RetryOptions,
} from './retry.js';

/** Options every method of the client takes last; each overrides the client's own for one call. */
export interface CallOptions {
  /** Aborts the call (retries included); it then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Time limit of one attempt, ms. Default: the client's `timeoutMs`. */
  timeoutMs?: number;
  /** Time limit of the whole call, retries and waits included, ms. Default: the client's `deadlineMs`. */
  deadlineMs?: number;
  /** Retry settings for this call; `false` = one attempt only. Default: the client's `retry`. */
  retry?: RetryOptions | false;
  /** Extra request headers for this call. */
  headers?: Record<string, string>;
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';
export type QueryValue = string | number | boolean | null | undefined;

/** What one method of the client asks of the transport. */
export interface CallSpec {
  method: HttpMethod;
  /** Path with its parameters already encoded. */
  path: string;
  query?: Readonly<Record<string, QueryValue>> | undefined;
  /** JSON body; none when undefined. */
  body?: unknown;
  /**
   * True when repeating the request cannot do anything twice (reads, PUT, DELETE, creates with an
   * idempotency key): then it is retried after any retryable failure, even one after which the
   * service may have acted. Otherwise only when the service certainly did not act.
   */
  idempotent: boolean;
  /** Error statuses answered as a value instead of thrown (e.g. 503 of `/health/ready`). */
  acceptStatuses?: readonly number[];
}

export interface Answer<T> {
  status: number;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: T;
}

export interface TransportOptions {
  baseUrl: string;
  apiKey: string | undefined;
  timeoutMs: number;
  deadlineMs: number;
  retry: ResolvedRetryOptions;
  headers: Readonly<Record<string, string>>;
  /** A dispatcher of the caller's (not closed by `close()`); default: an own undici Agent. */
  dispatcher: Dispatcher | undefined;
}

const USER_AGENT = `event-service-sdk (node ${process.version})`;

export class Transport {
  private readonly dispatcher: Dispatcher;
  private readonly ownDispatcher: boolean;
  /** Aborts the waits between attempts when the client closes. */
  private readonly closing = new AbortController();
  private closed: Promise<void> | null = null;
  private readonly origin: URL;

  constructor(private readonly options: TransportOptions) {
    this.origin = new URL(options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`);
    if (this.origin.protocol !== 'http:' && this.origin.protocol !== 'https:') {
      throw new TypeError(`baseUrl must be an http(s) URL, not ${options.baseUrl}`);
    }
    this.ownDispatcher = options.dispatcher === undefined;
    this.dispatcher = options.dispatcher ?? new Agent({ keepAliveTimeout: 4_000 });
  }

  get isClosed(): boolean {
    return this.closed !== null;
  }

  /**
   * Stops new calls (they reject with `ClientClosedError`), ends the waits of calls between two
   * attempts (same error), lets attempts in flight finish, and closes the connections. Idempotent.
   */
  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.closing.abort(new ClientClosedError());
    this.closed = this.ownDispatcher ? this.dispatcher.close() : Promise.resolve();
    return this.closed;
  }

  async call<T>(spec: CallSpec, options: CallOptions = {}): Promise<Answer<T>> {
    const retry =
      options.retry === undefined ? this.options.retry : resolveRetry(options.retry, this.options.retry);
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    const deadline = Date.now() + (options.deadlineMs ?? this.options.deadlineMs);
    const url = this.url(spec);
    const headers: Record<string, string> = {
      'user-agent': USER_AGENT,
      accept: 'application/json',
      'x-request-id': randomUUID(),
      ...lowerCaseKeys(this.options.headers),
      ...lowerCaseKeys(options.headers),
    };
    if (this.options.apiKey !== undefined) headers.authorization ??= `Bearer ${this.options.apiKey}`;
    let payload: string | undefined;
    if (spec.body !== undefined) {
      payload = JSON.stringify(spec.body);
      headers['content-type'] = 'application/json';
    }
    const describe = { method: spec.method, path: spec.path };

    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw new ClientClosedError();
      options.signal?.throwIfAborted();
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new TimeoutError(`${spec.method} ${spec.path}: the call's deadline passed`, {
          ...describe,
          code: 'TIMEOUT',
          attempts: attempt - 1,
          requestSent: attempt > 1,
        });
      }
      const outcome = await this.attempt(
        url,
        spec,
        headers,
        payload,
        Math.min(timeoutMs, remaining),
        options.signal,
      );
      let failure: Parameters<typeof decideRetry>[0]['failure'];
      let error: Error;
      if (outcome.type === 'answer') {
        const { status } = outcome;
        if ((status >= 200 && status < 300) || spec.acceptStatuses?.includes(status)) {
          return { status, headers: outcome.headers, body: parseJson(outcome.text, describe, attempt) as T };
        }
        const retryAfter = parseRetryAfter(outcome.headers['retry-after']);
        failure = { type: 'status', status, retryAfterSeconds: retryAfter };
        error = new EventServiceError({
          ...describe,
          status,
          body: errorBody(status, outcome.text),
          retryAfter,
          requestId: headerValue(outcome.headers['x-request-id']) ?? headers['x-request-id'],
          attempts: attempt,
        });
      } else {
        const { code, cause, timedOut } = outcome;
        const requestSent = !NOT_SENT_CODES.has(code);
        failure = { type: 'network', code, sent: requestSent };
        const init = { ...describe, code, attempts: attempt, requestSent, cause };
        error = timedOut
          ? new TimeoutError(
              `${spec.method} ${spec.path}: no answer within ${Math.min(timeoutMs, remaining)} ms`,
              init,
            )
          : new NetworkError(`${spec.method} ${spec.path}: ${code}: ${messageOf(cause)}`, init);
      }
      const decision = decideRetry({
        attempt,
        failure,
        idempotent: spec.idempotent,
        options: retry,
        remainingMs: deadline - Date.now(),
      });
      if (decision.type === 'fail') throw error;
      await this.wait(decision.afterMs, options.signal);
    }
  }

  private url(spec: CallSpec): URL {
    const url = new URL(spec.path.replace(/^\//, ''), this.origin);
    for (const [key, value] of Object.entries(spec.query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }
    return url;
  }

  /** One attempt: an answer (any status), or why none came. Never throws, except for the caller's abort. */
  private async attempt(
    url: URL,
    spec: CallSpec,
    headers: Record<string, string>,
    payload: string | undefined,
    timeoutMs: number,
    callerSignal: AbortSignal | undefined,
  ): Promise<
    | { type: 'answer'; status: number; headers: Record<string, string | string[] | undefined>; text: string }
    | { type: 'failure'; code: string; cause: unknown; timedOut: boolean }
  > {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const signal = callerSignal ? AbortSignal.any([callerSignal, timeout.signal]) : timeout.signal;
    try {
      const response = await request(url, {
        method: spec.method,
        headers,
        body: payload,
        signal,
        dispatcher: this.dispatcher,
      });
      const text = await response.body.text();
      return { type: 'answer', status: response.statusCode, headers: response.headers, text };
    } catch (cause) {
      if (callerSignal?.aborted) throw callerSignal.reason;
      if (timeout.signal.aborted) return { type: 'failure', code: 'TIMEOUT', cause, timedOut: true };
      if (this.closed && isUndiciClosed(cause)) throw new ClientClosedError();
      return { type: 'failure', code: errorCode(cause), cause, timedOut: false };
    } finally {
      clearTimeout(timer);
    }
  }

  private async wait(ms: number, callerSignal: AbortSignal | undefined): Promise<void> {
    const signal = callerSignal ? AbortSignal.any([callerSignal, this.closing.signal]) : this.closing.signal;
    try {
      await sleep(ms, undefined, { signal });
    } catch {
      if (callerSignal?.aborted) throw callerSignal.reason;
      throw new ClientClosedError();
    }
  }
}

function parseJson(text: string, describe: { method: string; path: string }, attempts: number): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new NetworkError(
      `${describe.method} ${describe.path}: the answer is not JSON: ${text.slice(0, 200)}`,
      { ...describe, code: 'INVALID_RESPONSE', attempts, requestSent: true, cause },
    );
  }
}

/** The service's `{detail, code, …}`, or one made from whatever else answered (a proxy's HTML page). */
export function errorBody(status: number, text: string): ErrorBody {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const body = parsed as Record<string, unknown>;
      return {
        ...body,
        detail: typeof body.detail === 'string' ? body.detail : text.slice(0, 500),
        code: typeof body.code === 'string' ? body.code : `http_${status}`,
      };
    }
  } catch {
    // not JSON
  }
  return { detail: text.slice(0, 500) || `HTTP ${status}`, code: `http_${status}` };
}

function lowerCaseKeys(headers: Readonly<Record<string, string>> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(headers ?? {}).map(([key, value]) => [key.toLowerCase(), value]));
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function errorCode(error: unknown): string {
  const own = (error as { code?: unknown } | null)?.code;
  if (typeof own === 'string') return own;
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause?.code;
  return typeof cause === 'string' ? cause : 'UNKNOWN';
}

function isUndiciClosed(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'UND_ERR_CLOSED' || code === 'UND_ERR_DESTROYED';
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
