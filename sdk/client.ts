/**
 * `EventServiceClient`: one method per endpoint of the event service, typed from the server's own
 * schemas. Every call goes through `Transport.call` (request.ts): timeouts, retries with backoff,
 * typed errors. Creates carry an idempotency key the client adds when the caller gave none, so a
 * retried create returns the original event instead of storing a second one.
 */
import { randomUUID } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { v7 as uuidv7 } from 'uuid';
import { Transport, type CallOptions, type CallSpec } from './request.js';
import { resolveRetry, type RetryOptions } from './retry.js';
import type {
  ApiKey,
  ApiKeyCreated,
  ApiKeyCreateRequest,
  ApiKeyList,
  ApiKeyListQuery,
  DeadLetterList,
  DeadLetterQuery,
  DeletedProcessor,
  DeletedProjection,
  DeletedSubscription,
  Delivery,
  DeliveryList,
  DeliveryListQuery,
  EventCreateRequest,
  EventList,
  EventQueryRequest,
  EventResponse,
  EventStatistics,
  EventStream,
  FailedEventList,
  FrontendAccepted,
  FrontendBatchAccepted,
  FrontendEvent,
  FrontendHealth,
  Health,
  PageQuery,
  PartialBatchResponse,
  ProcessingResultList,
  Processor,
  ProcessorRequest,
  Projection,
  ProjectionDefinition,
  ProjectionDefinitionListQuery,
  ProjectionQuery,
  Readiness,
  RegisterProjectionRequest,
  ReplayDryRun,
  ReplayJob,
  ReplayList,
  ReplayListQuery,
  ReplayRequest,
  ReplayResults,
  ReplayResultsQuery,
  ReplayStarted,
  RetryResponse,
  SegmentMessage,
  StatisticsQuery,
  StreamList,
  StreamListQuery,
  StreamReadQuery,
  Subscription,
  SubscriptionCreated,
  SubscriptionCreateRequest,
  SubscriptionUpdateRequest,
  WebhookAccepted,
  WhoAmI,
} from './types.js';

/** The service's default address (its port in the seed contract). */
export const DEFAULT_BASE_URL = 'http://localhost:8230';

export interface EventServiceClientOptions {
  /** Base URL of the service. Default: the `EVENT_SERVICE_URL` environment variable, else `http://localhost:8230`. */
  baseUrl?: string;
  /**
   * API key (or JWT) sent as `Authorization: Bearer <apiKey>`. Default: the `EVENT_SERVICE_API_KEY`
   * environment variable, else none (public endpoints only).
   */
  apiKey?: string;
  /** Time limit of one attempt (connect, send, answer), ms. Default 10000. */
  timeoutMs?: number;
  /** Time limit of a whole call, retries and the waits between them included, ms. Default 30000. */
  deadlineMs?: number;
  /**
   * Retries of network errors, timeouts, 429 and 503, with exponential backoff and jitter
   * (`Retry-After` honoured). Default `{maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 5000}`;
   * `false` = never retry.
   */
  retry?: RetryOptions | false;
  /**
   * Add an idempotency key to every create that has neither `idempotency_key` nor `event_id`
   * (and an `event_id` and `timestamp` to frontend events, a `messageId` to RudderStack messages),
   * so that a retry after a lost answer returns the original event instead of storing another.
   * Default true. With false such creates are retried only when the service certainly did not act.
   */
  autoIdempotency?: boolean;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /**
   * The undici dispatcher to send with (a proxy agent, a mock, a shared Agent). Default: an
   * Agent of this client's own, closed by `close()`; a dispatcher given here is not closed.
   */
  dispatcher?: Dispatcher;
}

/** `queryAll` options: the query filters, and how many events each page fetches. */
export type QueryAllRequest = Omit<EventQueryRequest, 'cursor' | 'offset' | 'limit' | 'include_total'> & {
  /** Events per request, 1..1000. Default 500. */
  pageSize?: number;
};

const EVENTS = '/api/v1/events';

export class EventServiceClient implements AsyncDisposable {
  /** The base URL calls go to. */
  readonly baseUrl: string;
  private readonly transport: Transport;
  private readonly autoIdempotency: boolean;

  /**
   * @param options the options, or just the base URL (the seed's `EventServiceClient(base_url)`).
   */
  constructor(options: EventServiceClientOptions | string = {}) {
    const opts = typeof options === 'string' ? { baseUrl: options } : options;
    this.baseUrl = (opts.baseUrl ?? envValue('EVENT_SERVICE_URL') ?? DEFAULT_BASE_URL).replace(/\/+$/, '');
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const deadlineMs = opts.deadlineMs ?? 30_000;
    if (!(timeoutMs > 0) || !(deadlineMs > 0)) throw new RangeError('timeoutMs and deadlineMs must be > 0');
    this.autoIdempotency = opts.autoIdempotency ?? true;
    this.transport = new Transport({
      baseUrl: this.baseUrl,
      apiKey: opts.apiKey ?? envValue('EVENT_SERVICE_API_KEY'),
      timeoutMs,
      deadlineMs,
      retry: resolveRetry(opts.retry),
      headers: opts.headers ?? {},
      dispatcher: opts.dispatcher,
    });
  }

  /**
   * Closes the client: new calls reject with `ClientClosedError`, calls waiting to retry stop
   * with it, requests in flight are answered, then the connections close. Safe to call twice.
   */
  close(): Promise<void> {
    return this.transport.close();
  }

  /** `await using client = new EventServiceClient()` closes it at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async send<T>(spec: CallSpec, options: CallOptions | undefined): Promise<T> {
    return (await this.transport.call<T>(spec, options)).body;
  }

  // --- health -------------------------------------------------------------------------------------

  /** `GET /health`: liveness `{status, service, version, timestamp}`. */
  health(options?: CallOptions): Promise<Health> {
    return this.send({ method: 'GET', path: '/health', idempotent: true }, options);
  }

  /**
   * `GET /health/ready`: `{status: 'ready' | 'degraded' | 'not_ready', checks, timestamp}`. A
   * not-ready service (503) is an answer here, not an error, and is not retried.
   */
  ready(options?: CallOptions): Promise<Readiness> {
    return this.send(
      { method: 'GET', path: '/health/ready', idempotent: true, acceptStatuses: [503] },
      options,
    );
  }

  // --- events -------------------------------------------------------------------------------------

  /**
   * `POST /api/v1/events/create`: stores one event (201) and returns it. A repeat with the same
   * `idempotency_key` or `event_id` returns the original; without either, the client adds an
   * `idempotency_key` (see `autoIdempotency`). A wrong `expected_version` is a 409
   * `version_conflict` whose `body.actual_version` says the stream's version.
   */
  createEvent(event: EventCreateRequest, options?: CallOptions): Promise<EventResponse> {
    const body = this.withIdempotencyKey(event);
    return this.send(
      { method: 'POST', path: `${EVENTS}/create`, body, idempotent: isRepeatable(body) },
      options,
    );
  }

  /**
   * `POST /api/v1/events/batch`, atomic: every event is stored (returned in request order) or
   * none (422 naming every bad index, or 409). Each event without a key gets one.
   */
  createBatch(events: readonly EventCreateRequest[], options?: CallOptions): Promise<EventResponse[]> {
    const body = events.map((event) => this.withIdempotencyKey(event));
    return this.send(
      { method: 'POST', path: `${EVENTS}/batch`, body, idempotent: body.every(isRepeatable) },
      options,
    );
  }

  /**
   * `POST /api/v1/events/batch?partial=true`: each event stands alone; the answer has one outcome
   * per event in request order (`status` 201, 200 for a repeat, 409 or 422, with `event` or `error`).
   */
  createBatchPartial(
    events: readonly EventCreateRequest[],
    options?: CallOptions,
  ): Promise<PartialBatchResponse> {
    const body = events.map((event) => this.withIdempotencyKey(event));
    return this.send(
      {
        method: 'POST',
        path: `${EVENTS}/batch`,
        query: { partial: true },
        body,
        idempotent: body.every(isRepeatable),
      },
      options,
    );
  }

  /** `GET /api/v1/events/{event_id}`: the whole event; 404 `not_found` when unknown. */
  getEvent(eventId: string, options?: CallOptions): Promise<EventResponse> {
    return this.send({ method: 'GET', path: `${EVENTS}/${enc(eventId)}`, idempotent: true }, options);
  }

  /**
   * `POST /api/v1/events/query`: one page, newest first. Pass `next_cursor` back as `cursor` for
   * the next page, or use `queryAll`.
   */
  queryEvents(query: EventQueryRequest = {}, options?: CallOptions): Promise<EventList> {
    return this.send({ method: 'POST', path: `${EVENTS}/query`, body: query, idempotent: true }, options);
  }

  /**
   * Every event matching the filters, newest first, fetched page by page with the cursor:
   * `for await (const event of client.queryAll({user_id: 'u-1'})) …`.
   */
  async *queryAll(
    query: QueryAllRequest = {},
    options?: CallOptions,
  ): AsyncGenerator<EventResponse, void, undefined> {
    const { pageSize = 500, ...filters } = query;
    let cursor: string | undefined;
    for (;;) {
      const page = await this.queryEvents(
        { ...filters, limit: pageSize, include_total: false, ...(cursor === undefined ? {} : { cursor }) },
        options,
      );
      yield* page.events;
      if (!page.has_more || page.next_cursor === null) return;
      cursor = page.next_cursor;
    }
  }

  /** `GET /api/v1/events/statistics`, optionally for one user and a time range. */
  getStatistics(query: StatisticsQuery = {}, options?: CallOptions): Promise<EventStatistics> {
    return this.send({ method: 'GET', path: `${EVENTS}/statistics`, query, idempotent: true }, options);
  }

  // --- streams ------------------------------------------------------------------------------------

  /**
   * `GET /api/v1/events/stream/{stream_id}`: the events of one stream in version order, forwards
   * from `from_version` or (`direction: 'backward'`) backwards; 404 when the stream has no events.
   */
  readStream(streamId: string, query: StreamReadQuery = {}, options?: CallOptions): Promise<EventStream> {
    return this.send(
      { method: 'GET', path: `${EVENTS}/stream/${enc(streamId)}`, query, idempotent: true },
      options,
    );
  }

  /** `GET /api/v1/events/streams`: the streams that have events, with their heads. */
  listStreams(query: StreamListQuery = {}, options?: CallOptions): Promise<StreamList> {
    return this.send({ method: 'GET', path: `${EVENTS}/streams`, query, idempotent: true }, options);
  }

  // --- projections --------------------------------------------------------------------------------

  /**
   * `GET /api/v1/events/projections/{entity_type}/{entity_id}`: the default projection
   * (`state[event_type] = data`), or a declared one with `name`; current, or as of a version
   * (`as_of_version`) or a time (`as_of`). 404 when the entity has no events.
   */
  getProjection(
    entityType: string,
    entityId: string,
    query: ProjectionQuery = {},
    options?: CallOptions,
  ): Promise<Projection> {
    return this.send(
      {
        method: 'GET',
        path: `${EVENTS}/projections/${enc(entityType)}/${enc(entityId)}`,
        query,
        idempotent: true,
      },
      options,
    );
  }

  /** `POST /api/v1/events/projections` (admin): registers a declared projection (409 when the name is taken). */
  registerProjection(
    definition: RegisterProjectionRequest,
    options?: CallOptions,
  ): Promise<ProjectionDefinition> {
    return this.send(
      { method: 'POST', path: `${EVENTS}/projections`, body: definition, idempotent: false },
      options,
    );
  }

  /** `GET /api/v1/events/projections` (admin): every declared projection with its status and progress. */
  listProjections(
    query: ProjectionDefinitionListQuery = {},
    options?: CallOptions,
  ): Promise<ProjectionDefinition[]> {
    return this.send({ method: 'GET', path: `${EVENTS}/projections`, query, idempotent: true }, options);
  }

  /** `GET /api/v1/events/projections/{name}` (admin): one declared projection with its progress. */
  getProjectionDefinition(name: string, options?: CallOptions): Promise<ProjectionDefinition> {
    return this.send(
      { method: 'GET', path: `${EVENTS}/projections/${enc(name)}`, idempotent: true },
      options,
    );
  }

  /** `DELETE /api/v1/events/projections/{name}` (admin): the definition and its states; the events stay. */
  deleteProjection(name: string, options?: CallOptions): Promise<DeletedProjection> {
    return this.send(
      { method: 'DELETE', path: `${EVENTS}/projections/${enc(name)}`, idempotent: true },
      options,
    );
  }

  /** `POST /api/v1/events/projections/{name}/rebuild` (admin): recomputes every state in the background (202). */
  rebuildProjection(name: string, options?: CallOptions): Promise<ProjectionDefinition> {
    // A rebuild in progress goes on rather than restarting: repeating the request is harmless.
    return this.send(
      { method: 'POST', path: `${EVENTS}/projections/${enc(name)}/rebuild`, idempotent: true },
      options,
    );
  }

  // --- replay -------------------------------------------------------------------------------------

  /**
   * `POST /api/v1/events/replay` (admin), the seed's `replay_events`: a dry run (`dry_run: true`)
   * or a replay job. `dryRunReplay` and `startReplay` are the same with a precise answer type.
   */
  replayEvents(request: ReplayRequest, options?: CallOptions): Promise<ReplayDryRun | ReplayStarted> {
    // A dry run changes nothing; a started replay must not start twice.
    return this.send(
      { method: 'POST', path: `${EVENTS}/replay`, body: request, idempotent: request.dry_run === true },
      options,
    );
  }

  /** A dry run: how many events a replay would cover, and the first ids. Changes nothing. */
  dryRunReplay(selection: Omit<ReplayRequest, 'dry_run'>, options?: CallOptions): Promise<ReplayDryRun> {
    return this.replayEvents({ ...selection, dry_run: true }, options) as Promise<ReplayDryRun>;
  }

  /** Starts a replay job (202): follow it with `getReplay(replay_id)`. */
  startReplay(request: Omit<ReplayRequest, 'dry_run'>, options?: CallOptions): Promise<ReplayStarted> {
    return this.replayEvents({ ...request, dry_run: false }, options) as Promise<ReplayStarted>;
  }

  /** `GET /api/v1/events/replay/{replay_id}` (admin): status and progress. */
  getReplay(replayId: string, options?: CallOptions): Promise<ReplayJob> {
    return this.send({ method: 'GET', path: `${EVENTS}/replay/${enc(replayId)}`, idempotent: true }, options);
  }

  /** `DELETE /api/v1/events/replay/{replay_id}` (admin): cancels it; 409 once it has ended. */
  cancelReplay(replayId: string, options?: CallOptions): Promise<ReplayJob> {
    return this.send(
      { method: 'DELETE', path: `${EVENTS}/replay/${enc(replayId)}`, idempotent: true },
      options,
    );
  }

  /** `GET /api/v1/events/replay` (admin): replay jobs, newest first. */
  listReplays(query: ReplayListQuery = {}, options?: CallOptions): Promise<ReplayList> {
    return this.send({ method: 'GET', path: `${EVENTS}/replay`, query, idempotent: true }, options);
  }

  /** `GET /api/v1/events/replay/{replay_id}/results` (admin): processing results of a `reprocess` replay. */
  getReplayResults(
    replayId: string,
    query: ReplayResultsQuery = {},
    options?: CallOptions,
  ): Promise<ReplayResults> {
    return this.send(
      { method: 'GET', path: `${EVENTS}/replay/${enc(replayId)}/results`, query, idempotent: true },
      options,
    );
  }

  // --- processors ---------------------------------------------------------------------------------

  /** `POST /api/v1/events/processors` (admin): registers a processor (409 when the name is taken). */
  createProcessor(processor: ProcessorRequest, options?: CallOptions): Promise<Processor> {
    return this.send(
      { method: 'POST', path: `${EVENTS}/processors`, body: processor, idempotent: false },
      options,
    );
  }

  /** `GET /api/v1/events/processors` (admin): every processor, in run order. */
  listProcessors(options?: CallOptions): Promise<Processor[]> {
    return this.send({ method: 'GET', path: `${EVENTS}/processors`, idempotent: true }, options);
  }

  /** `GET /api/v1/events/processors/{processor_id}` (admin). */
  getProcessor(processorId: string, options?: CallOptions): Promise<Processor> {
    return this.send(
      { method: 'GET', path: `${EVENTS}/processors/${enc(processorId)}`, idempotent: true },
      options,
    );
  }

  /** `PUT /api/v1/events/processors/{processor_id}` (admin): replaces the whole definition. */
  updateProcessor(
    processorId: string,
    processor: ProcessorRequest,
    options?: CallOptions,
  ): Promise<Processor> {
    return this.send(
      { method: 'PUT', path: `${EVENTS}/processors/${enc(processorId)}`, body: processor, idempotent: true },
      options,
    );
  }

  /** `DELETE /api/v1/events/processors/{processor_id}` (admin). */
  deleteProcessor(processorId: string, options?: CallOptions): Promise<DeletedProcessor> {
    return this.send(
      { method: 'DELETE', path: `${EVENTS}/processors/${enc(processorId)}`, idempotent: true },
      options,
    );
  }

  /**
   * `PUT /api/v1/events/processors/{processor_id}/toggle` (admin): sets `enabled`, or flips the
   * state without it (a flip is not retried after a lost answer: it could flip twice).
   */
  toggleProcessor(processorId: string, enabled?: boolean, options?: CallOptions): Promise<Processor> {
    return this.send(
      {
        method: 'PUT',
        path: `${EVENTS}/processors/${enc(processorId)}/toggle`,
        query: { enabled },
        idempotent: enabled !== undefined,
      },
      options,
    );
  }

  /** `GET /api/v1/events/failed` (admin): processing dead letters, newest first. */
  listFailedEvents(query: PageQuery = {}, options?: CallOptions): Promise<FailedEventList> {
    return this.send({ method: 'GET', path: `${EVENTS}/failed`, query, idempotent: true }, options);
  }

  /** `POST /api/v1/events/{event_id}/retry` (admin): puts a dead letter back in the queue (409 when not `failed`). */
  retryEvent(eventId: string, options?: CallOptions): Promise<RetryResponse> {
    return this.send({ method: 'POST', path: `${EVENTS}/${enc(eventId)}/retry`, idempotent: false }, options);
  }

  /** `GET /api/v1/events/{event_id}/results`: the event's processing results, one per processor per attempt. */
  getEventResults(
    eventId: string,
    query: PageQuery = {},
    options?: CallOptions,
  ): Promise<ProcessingResultList> {
    return this.send(
      { method: 'GET', path: `${EVENTS}/${enc(eventId)}/results`, query, idempotent: true },
      options,
    );
  }

  // --- subscriptions ------------------------------------------------------------------------------

  /**
   * `POST /api/v1/events/subscriptions` (admin): the answer holds `webhook_secret` this once.
   * Not retried after a lost answer (the secret would be lost with it); 409 when the name is taken.
   */
  createSubscription(
    subscription: SubscriptionCreateRequest,
    options?: CallOptions,
  ): Promise<SubscriptionCreated> {
    return this.send(
      { method: 'POST', path: `${EVENTS}/subscriptions`, body: subscription, idempotent: false },
      options,
    );
  }

  /** `GET /api/v1/events/subscriptions` (admin): never with secrets. */
  listSubscriptions(query: { enabled?: boolean } = {}, options?: CallOptions): Promise<Subscription[]> {
    return this.send({ method: 'GET', path: `${EVENTS}/subscriptions`, query, idempotent: true }, options);
  }

  /** `GET /api/v1/events/subscriptions/{subscription_id}` (admin). */
  getSubscription(subscriptionId: string, options?: CallOptions): Promise<Subscription> {
    return this.send(
      { method: 'GET', path: `${EVENTS}/subscriptions/${enc(subscriptionId)}`, idempotent: true },
      options,
    );
  }

  /** `PUT /api/v1/events/subscriptions/{subscription_id}` (admin): changes the fields given. */
  updateSubscription(
    subscriptionId: string,
    changes: SubscriptionUpdateRequest,
    options?: CallOptions,
  ): Promise<Subscription> {
    return this.send(
      {
        method: 'PUT',
        path: `${EVENTS}/subscriptions/${enc(subscriptionId)}`,
        body: changes,
        idempotent: true,
      },
      options,
    );
  }

  /** `DELETE /api/v1/events/subscriptions/{subscription_id}` (admin): delivery has stopped when it resolves. */
  deleteSubscription(subscriptionId: string, options?: CallOptions): Promise<DeletedSubscription> {
    return this.send(
      { method: 'DELETE', path: `${EVENTS}/subscriptions/${enc(subscriptionId)}`, idempotent: true },
      options,
    );
  }

  /** `POST /api/v1/events/subscriptions/{subscription_id}/enable` (admin): resumes delivery. */
  enableSubscription(subscriptionId: string, options?: CallOptions): Promise<Subscription> {
    return this.send(
      { method: 'POST', path: `${EVENTS}/subscriptions/${enc(subscriptionId)}/enable`, idempotent: true },
      options,
    );
  }

  /** `POST /api/v1/events/subscriptions/{subscription_id}/disable` (admin): resolves once nothing is in flight. */
  disableSubscription(subscriptionId: string, options?: CallOptions): Promise<Subscription> {
    return this.send(
      { method: 'POST', path: `${EVENTS}/subscriptions/${enc(subscriptionId)}/disable`, idempotent: true },
      options,
    );
  }

  /** `GET /api/v1/events/subscriptions/{subscription_id}/deliveries` (admin): deliveries with every attempt. */
  listDeliveries(
    subscriptionId: string,
    query: DeliveryListQuery = {},
    options?: CallOptions,
  ): Promise<DeliveryList> {
    return this.send(
      {
        method: 'GET',
        path: `${EVENTS}/subscriptions/${enc(subscriptionId)}/deliveries`,
        query,
        idempotent: true,
      },
      options,
    );
  }

  /** `POST …/subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver` (admin): 409 while pending. */
  redeliver(subscriptionId: string, deliveryId: string, options?: CallOptions): Promise<Delivery> {
    return this.send(
      {
        method: 'POST',
        path: `${EVENTS}/subscriptions/${enc(subscriptionId)}/deliveries/${enc(deliveryId)}/redeliver`,
        idempotent: false,
      },
      options,
    );
  }

  // --- ingest channels ----------------------------------------------------------------------------

  /** `GET /api/v1/events/dead-letters` (admin): messages an ingest channel could not turn into events. */
  listDeadLetters(query: DeadLetterQuery = {}, options?: CallOptions): Promise<DeadLetterList> {
    return this.send({ method: 'GET', path: `${EVENTS}/dead-letters`, query, idempotent: true }, options);
  }

  /**
   * `POST /api/v1/events/frontend` (public): one frontend event. Without `event_id` the client
   * sets one, and `timestamp` to now, so that a retry is stored once (see `autoIdempotency`).
   */
  sendFrontendEvent(event: FrontendEvent, options?: CallOptions): Promise<FrontendAccepted> {
    const body = this.withFrontendId(event);
    return this.send(
      { method: 'POST', path: `${EVENTS}/frontend`, body, idempotent: body.event_id !== undefined },
      options,
    );
  }

  /** `POST /api/v1/events/frontend/batch` (public): `client_info` is merged into each event's metadata. */
  sendFrontendBatch(
    events: readonly FrontendEvent[],
    clientInfo?: Record<string, unknown> | null,
    options?: CallOptions,
  ): Promise<FrontendBatchAccepted> {
    const body = {
      events: events.map((event) => this.withFrontendId(event)),
      ...(clientInfo === undefined ? {} : { client_info: clientInfo }),
    };
    return this.send(
      {
        method: 'POST',
        path: `${EVENTS}/frontend/batch`,
        body,
        idempotent: body.events.every((event) => event.event_id !== undefined),
      },
      options,
    );
  }

  /** `GET /api/v1/events/frontend/health` (public). */
  frontendHealth(options?: CallOptions): Promise<FrontendHealth> {
    return this.send({ method: 'GET', path: `${EVENTS}/frontend/health`, idempotent: true }, options);
  }

  /**
   * `POST /webhooks/rudderstack`: Segment-spec messages as RudderStack's webhook destination sends
   * them (for relaying or tests). `secret` is the service's `RUDDERSTACK_WEBHOOK_SECRET`, sent as
   * `X-Signature`. A message without `messageId` gets one (and `timestamp` now, when it has none),
   * so that a retry is stored once.
   */
  sendRudderStack(
    messages: SegmentMessage | readonly SegmentMessage[],
    options: CallOptions & { secret?: string } = {},
  ): Promise<WebhookAccepted> {
    const { secret, ...callOptions } = options;
    const list = (Array.isArray(messages) ? messages : [messages]) as SegmentMessage[];
    const body = list.map((message) => this.withMessageId(message));
    return this.send(
      {
        method: 'POST',
        path: '/webhooks/rudderstack',
        body: Array.isArray(messages) ? body : body[0],
        idempotent: body.every((message) => message.messageId !== undefined && message.messageId !== null),
      },
      secret === undefined
        ? callOptions
        : { ...callOptions, headers: { ...callOptions.headers, 'x-signature': secret } },
    );
  }

  // --- authentication ----------------------------------------------------------------------------

  /**
   * `POST /api/v1/auth/keys` (admin): a new API key; the answer holds `key` this once, so a lost
   * answer is not retried (a second key would be made and the first never seen).
   */
  createApiKey(request: ApiKeyCreateRequest, options?: CallOptions): Promise<ApiKeyCreated> {
    return this.send(
      { method: 'POST', path: '/api/v1/auth/keys', body: request, idempotent: false },
      options,
    );
  }

  /** `GET /api/v1/auth/keys` (admin): keys newest first, never with the key itself. */
  listApiKeys(query: ApiKeyListQuery = {}, options?: CallOptions): Promise<ApiKeyList> {
    return this.send({ method: 'GET', path: '/api/v1/auth/keys', query, idempotent: true }, options);
  }

  /** `DELETE /api/v1/auth/keys/{key_id}` (admin): the key stops working; revoking twice changes nothing. */
  revokeApiKey(keyId: string, options?: CallOptions): Promise<ApiKey> {
    return this.send(
      { method: 'DELETE', path: `/api/v1/auth/keys/${enc(keyId)}`, idempotent: true },
      options,
    );
  }

  /** `GET /api/v1/auth/whoami`: the principal, scopes and user of this client's credential. */
  whoami(options?: CallOptions): Promise<WhoAmI> {
    return this.send({ method: 'GET', path: '/api/v1/auth/whoami', idempotent: true }, options);
  }

  // --- idempotency ------------------------------------------------------------------------------------

  private withIdempotencyKey(event: EventCreateRequest): EventCreateRequest {
    if (!this.autoIdempotency || isRepeatable(event)) return event;
    return { ...event, idempotency_key: randomUUID() };
  }

  private withFrontendId(event: FrontendEvent): FrontendEvent {
    if (!this.autoIdempotency || event.event_id !== undefined) return event;
    // The collector's content check includes the time: a retry must carry the same one.
    return { ...event, event_id: uuidv7(), timestamp: event.timestamp ?? new Date().toISOString() };
  }

  private withMessageId(message: SegmentMessage): SegmentMessage {
    if (!this.autoIdempotency || (message.messageId !== undefined && message.messageId !== null))
      return message;
    const timed = message.timestamp ?? message.originalTimestamp;
    return {
      ...message,
      messageId: randomUUID(),
      ...(timed === undefined || timed === null ? { timestamp: new Date().toISOString() } : {}),
    };
  }
}

/** A create the service recognizes when it comes again. */
function isRepeatable(event: EventCreateRequest): boolean {
  return event.idempotency_key !== undefined || event.event_id !== undefined;
}

function enc(value: string): string {
  return encodeURIComponent(value);
}

function envValue(name: string): string | undefined {
  const value = typeof process === 'undefined' ? undefined : process.env[name];
  return value === undefined || value === '' ? undefined : value;
}
