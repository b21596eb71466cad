/**
 * The only reader of process.env. Reads once, validates, applies defaults and returns a frozen,
 * typed object. A bad value stops start-up with a message that names the variable and the reason.
 */
import { trustedProxies } from './ingest/client-ip.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  readonly port: number;
  readonly host: string;
  /** PostgreSQL connection string; undefined means the embedded store (PGlite) in `dataDir`. */
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly logLevel: LogLevel;
  readonly batchMaxEvents: number;
  readonly bodyLimitBytes: number;
  readonly dbPoolSize: number;
  readonly dbStatementTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** Write keys of the tracking API (`/v1/*`); empty means the tracking API answers 401 to everything. */
  readonly writeKeys: readonly string[];
  /** Shared secret of `/webhooks/rudderstack`; undefined means the webhook takes any request. */
  readonly rudderstackWebhookSecret: string | undefined;
  /** Largest tracking API message (JSON bytes); a bigger one is rejected, the rest of its batch kept. */
  readonly trackingMaxMessageBytes: number;
  /** Largest tracking API request body after gzip decompression; larger is a 413. */
  readonly trackingMaxBatchBytes: number;
  /** Outbound calls (webhook processors, subscription callbacks) may reach private networks. */
  readonly webhookAllowPrivateNetworks: boolean;
  /** NATS servers (comma-separated URLs); undefined means the in-process bus. */
  readonly natsUrl: string | undefined;
  readonly natsStreamMaxAgeMs: number;
  readonly natsStreamMaxBytes: number;
  readonly natsDuplicateWindowMs: number;
  /** How long a published lifecycle message stays in `event.outbox` before the relay deletes it. */
  readonly outboxRetentionMs: number;
  /** Largest body of the frontend collector's requests, bytes. */
  readonly frontendBodyLimitBytes: number;
  /** Most events in one frontend batch request. */
  readonly frontendBatchMaxEvents: number;
  /** Requests a minute one client (IP) may make to the frontend collector; 0 = no limit. */
  readonly frontendRateLimitPerMinute: number;
  /** Origins allowed to call the frontend collector from a browser; `*` = any. */
  readonly frontendCorsOrigins: readonly string[];
  /** Reverse proxies (IPs and CIDR ranges) whose `X-Forwarded-For` is believed; empty = none. */
  readonly trustedProxies: readonly string[];
  /** Run the processing engine on this instance (another instance on the database may do it instead). */
  readonly processingEnabled: boolean;
  /** How often an idle processing engine looks for work another instance stored, ms. */
  readonly processingPollMs: number;
  /** How long a claim on a batch of events lasts; a crashed instance's claims expire after it, ms. */
  readonly processingLeaseMs: number;
  /** Most events one claim takes. */
  readonly processingBatchSize: number;
  /** Most events of one batch whose processors run at once. */
  readonly processingConcurrency: number;
  /** Batches one instance works on at once (PostgreSQL; the embedded store runs one). */
  readonly processingParallelBatches: number;
  /**
   * Time limit of one processor run unless its config sets `timeout_ms`, ms. A run never outlives
   * its claim: any timeout is at most the lease less two margins (src/processing/engine.ts).
   */
  readonly processingTimeoutMs: number;
  /** Retries after a failed attempt before the event is a dead letter (`failed`). */
  readonly processingMaxRetries: number;
  /** First retry delay; doubles per retry, with jitter, ms. */
  readonly processingRetryBaseMs: number;
  /** Longest retry delay, ms. */
  readonly processingRetryMaxMs: number;
  /** Longest a webhook delivery attempt may take (connect, send, answer), ms. */
  readonly deliveryTimeoutMs: number;
  /** Most webhook delivery attempts in flight at once per instance. */
  readonly deliveryConcurrency: number;
  /** Most attempts in flight at once per instance to one subscription (a slow endpoint holds no more). */
  readonly deliveryPerSubscriptionConcurrency: number;
  /** How often idle delivery workers look for work (and in-flight attempts re-check their subscription), ms. */
  readonly deliveryPollMs: number;
  /** How long a claim on a delivery lasts (longer than the timeout); a crashed instance's claims expire after it, ms. */
  readonly deliveryLeaseMs: number;
  /** A subscription whose every attempt has failed for this long is disabled (0 = never), ms. */
  readonly deliveryDisableAfterMs: number;
  /** A projection snapshot is kept every this many events of a stream. */
  readonly snapshotEvery: number;
  /** How often an idle projector looks for work other instances caused (appends, registrations), ms. */
  readonly projectionPollMs: number;
  /** Positions of the log one projector batch covers (per declared projection). */
  readonly projectionBatchSize: number;
  /** Most events one page of a replay reads, publishes and records (its memory bound). */
  readonly replayPageSize: number;
  /**
   * How long a claim on a replay job lasts without renewal; a crashed instance's job is resumed
   * after it. At most half of NATS_DUPLICATE_WINDOW_MS, so that a page published again on resume
   * is dropped as a duplicate, ms.
   */
  readonly replayLeaseMs: number;
  /** How often an idle instance looks for replay jobs, ms. */
  readonly replayPollMs: number;
  /** Replay jobs one instance works on at once (PostgreSQL; the embedded store runs one). */
  readonly replayConcurrency: number;
  /**
   * Longest a graceful shutdown may take, counted from the signal (the delay included); past it the
   * process logs what was still pending and exits 1, ms.
   */
  readonly shutdownTimeoutMs: number;
  /**
   * After the signal, how long the service keeps serving while `/health/ready` answers 503, so that
   * load balancers stop sending before it stops accepting, ms.
   */
  readonly shutdownDelayMs: number;
  /** Register with the Consul agent at `consulHost`:`consulPort` (src/ops/consul.ts). */
  readonly consulEnabled: boolean;
  readonly consulHost: string;
  readonly consulPort: number;
  /** ACL token sent to the Consul agent (`X-Consul-Token`); undefined = none. */
  readonly consulToken: string | undefined;
  /** Address other services should call, as registered in Consul; undefined = derived (ops/consul.ts). */
  readonly serviceAddress: string | undefined;
  /**
   * `GET /metrics` without credentials (for scrapers that cannot send a bearer token); otherwise it
   * needs the `admin` scope.
   */
  readonly metricsPublic: boolean;
  /**
   * OTLP/HTTP endpoint of an OpenTelemetry collector (`OTEL_EXPORTER_OTLP_ENDPOINT`, e.g.
   * `http://localhost:4318`); undefined = no trace export. Read by the preload
   * (src/observability/otel-preload.ts), which must run before anything it instruments is loaded.
   */
  readonly otelEndpoint: string | undefined;
  /** `service.name` of the exported spans (`OTEL_SERVICE_NAME`). */
  readonly otelServiceName: string;
  /** An admin API key from the environment (never stored); unset = keys of the database only. */
  readonly adminApiKey: string | undefined;
  /** Requests a minute one credential may make (admins exempt); 0 = no limit. Per instance. */
  readonly rateLimitPerMinute: number;
  /** Requests a minute one client IP may make without a valid credential; 0 = no limit. Per instance. */
  readonly rateLimitIpPerMinute: number;
  /** How long a verified API key is believed without asking the database again, ms (0 = always ask). */
  readonly authCacheTtlMs: number;
  /** Most verified API keys held in memory. */
  readonly authCacheMaxEntries: number;
  /** Shared secret of HS256/384/512 JWTs; unset = none accepted. */
  readonly jwtSecret: string | undefined;
  /** JWKS of asymmetrically signed JWTs; unset = none accepted. */
  readonly jwtJwksUrl: string | undefined;
  /** Required `iss` of JWTs; unset = not checked. */
  readonly jwtIssuer: string | undefined;
  /** Required `aud` of JWTs; unset = not checked. */
  readonly jwtAudience: string | undefined;
  /** Claim with a JWT's scopes (a dot path is followed); the `roles` claim counts too. */
  readonly jwtScopesClaim: string;
  /** Claim that binds a JWT principal to a user; unset = JWT principals are not user-bound. */
  readonly jwtUserClaim: string | undefined;
  /** Longest a JWKS fetch may take, ms. */
  readonly jwtJwksTimeoutMs: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const read = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw)) {
      problems.push(`${name}=${JSON.stringify(raw)}: must be a whole number`);
      return fallback;
    }
    const value = Number(raw);
    if (value < min || value > max) {
      problems.push(`${name}=${raw}: must be between ${min} and ${max}`);
      return fallback;
    }
    return value;
  };

  const list = (name: string, fallback: string): string[] =>
    (read(name) ?? fallback)
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');

  for (const entry of list('TRUSTED_PROXIES', '')) {
    try {
      trustedProxies([entry]);
    } catch {
      problems.push(`TRUSTED_PROXIES: ${JSON.stringify(entry)} is not an IP address or CIDR range`);
    }
  }
  for (const origin of list('FRONTEND_CORS_ORIGINS', '*')) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      problems.push(
        `FRONTEND_CORS_ORIGINS: ${JSON.stringify(origin)} must be * or an origin such as https://app.example.com`,
      );
    }
  }

  const bool = (name: string, fallback: boolean): boolean => {
    const raw = read(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['true', '1', 'yes'].includes(raw)) return true;
    if (['false', '0', 'no'].includes(raw)) return false;
    problems.push(`${name}=${JSON.stringify(raw)}: must be true or false`);
    return fallback;
  };
  /** A host name or IP address (IPv6 with or without brackets), without scheme or port. */
  const hostName = (name: string): string | undefined => {
    const raw = read(name);
    if (raw === undefined) return undefined;
    const host = raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw;
    if (!/^[A-Za-z0-9._-]+$/.test(host) && !(/^[0-9A-Fa-f:.]+$/.test(host) && host.includes(':'))) {
      problems.push(`${name}=${JSON.stringify(raw)}: must be a host name or IP address (no scheme, no port)`);
      return undefined;
    }
    return host;
  };
  const databaseUrl = read('DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL: must start with postgres:// or postgresql://');
  }
  const natsUrl = read('NATS_URL');
  if (
    natsUrl !== undefined &&
    !natsUrl.split(',').every((url) => /^(nats|tls|wss?):\/\/[^\s]+$/.test(url.trim()))
  ) {
    problems.push('NATS_URL: must be nats://host:port (several separated by commas)');
  }
  const logLevel = (read('LOG_LEVEL') ?? 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    problems.push(`LOG_LEVEL=${JSON.stringify(logLevel)}: must be one of ${LOG_LEVELS.join(', ')}`);
  }

  const config: Config = {
    port: int('PORT', 8230, 0, 65535),
    host: read('HOST') ?? '0.0.0.0',
    databaseUrl,
    dataDir: read('DATA_DIR') ?? './data',
    logLevel: logLevel as LogLevel,
    batchMaxEvents: int('BATCH_MAX_EVENTS', 1000, 1, 100_000),
    bodyLimitBytes: int('BODY_LIMIT_BYTES', 10 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    dbPoolSize: int('DB_POOL_SIZE', 10, 1, 1000),
    dbStatementTimeoutMs: int('DB_STATEMENT_TIMEOUT_MS', 30_000, 100, 3_600_000),
    requestTimeoutMs: int('REQUEST_TIMEOUT_MS', 60_000, 1000, 3_600_000),
    writeKeys: Object.freeze(
      (read('WRITE_KEYS') ?? '')
        .split(',')
        .map((key) => key.trim())
        .filter((key) => key !== ''),
    ),
    rudderstackWebhookSecret: read('RUDDERSTACK_WEBHOOK_SECRET'),
    // Segment's limits: 32 KB per message, 500 KB per batch request.
    trackingMaxMessageBytes: int('TRACKING_MAX_MESSAGE_BYTES', 32 * 1024, 1024, 16 * 1024 * 1024),
    trackingMaxBatchBytes: int('TRACKING_MAX_BATCH_BYTES', 500 * 1024, 1024, 1024 * 1024 * 1024),
    webhookAllowPrivateNetworks: bool('WEBHOOK_ALLOW_PRIVATE_NETWORKS', false),
    natsUrl,
    natsStreamMaxAgeMs: int('NATS_STREAM_MAX_AGE_MS', 7 * 24 * 3_600_000, 0, 365 * 24 * 3_600_000),
    natsStreamMaxBytes: int('NATS_STREAM_MAX_BYTES', 0, 0, Number.MAX_SAFE_INTEGER),
    natsDuplicateWindowMs: int('NATS_DUPLICATE_WINDOW_MS', 120_000, 1000, 24 * 3_600_000),
    outboxRetentionMs: int('OUTBOX_RETENTION_MS', 60_000, 0, 7 * 24 * 3_600_000),
    frontendBodyLimitBytes: int('FRONTEND_BODY_LIMIT_BYTES', 1024 * 1024, 1024, 1024 * 1024 * 1024),
    frontendBatchMaxEvents: int('FRONTEND_BATCH_MAX_EVENTS', 500, 1, 100_000),
    frontendRateLimitPerMinute: int('FRONTEND_RATE_LIMIT_PER_MINUTE', 1200, 0, 100_000_000),
    frontendCorsOrigins: Object.freeze(list('FRONTEND_CORS_ORIGINS', '*')),
    trustedProxies: Object.freeze(list('TRUSTED_PROXIES', '')),
    processingEnabled: bool('PROCESSING_ENABLED', true),
    processingPollMs: int('PROCESSING_POLL_MS', 250, 5, 60_000),
    processingLeaseMs: int('PROCESSING_LEASE_MS', 60_000, 500, 3_600_000),
    processingBatchSize: int('PROCESSING_BATCH_SIZE', 1_000, 1, 10_000),
    processingConcurrency: int('PROCESSING_CONCURRENCY', 64, 1, 10_000),
    processingParallelBatches: int('PROCESSING_PARALLEL_BATCHES', 3, 1, 64),
    processingTimeoutMs: int('PROCESSING_TIMEOUT_MS', 10_000, 10, 600_000),
    processingMaxRetries: int('PROCESSING_MAX_RETRIES', 3, 0, 100),
    processingRetryBaseMs: int('PROCESSING_RETRY_BASE_MS', 2_000, 1, 3_600_000),
    processingRetryMaxMs: int('PROCESSING_RETRY_MAX_MS', 300_000, 1, 24 * 3_600_000),
    deliveryTimeoutMs: int('DELIVERY_TIMEOUT_MS', 15_000, 10, 600_000),
    deliveryConcurrency: int('DELIVERY_CONCURRENCY', 1024, 1, 100_000),
    deliveryPerSubscriptionConcurrency: int('DELIVERY_PER_SUBSCRIPTION_CONCURRENCY', 256, 1, 100_000),
    deliveryPollMs: int('DELIVERY_POLL_MS', 100, 5, 60_000),
    deliveryLeaseMs: int('DELIVERY_LEASE_MS', 60_000, 100, 3_600_000),
    snapshotEvery: int('SNAPSHOT_EVERY', 100, 1, 100_000),
    projectionPollMs: int('PROJECTION_POLL_MS', 250, 5, 60_000),
    projectionBatchSize: int('PROJECTION_BATCH_SIZE', 5000, 10, 100_000),
    replayPageSize: int('REPLAY_PAGE_SIZE', 2000, 1, 10_000),
    replayLeaseMs: int('REPLAY_LEASE_MS', 30_000, 500, 3_600_000),
    replayPollMs: int('REPLAY_POLL_MS', 500, 5, 60_000),
    replayConcurrency: int('REPLAY_CONCURRENCY', 1, 1, 16),
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', 25_000, 1000, 600_000),
    shutdownDelayMs: int('SHUTDOWN_DELAY_MS', 0, 0, 300_000),
    consulEnabled: bool('CONSUL_ENABLED', false),
    consulHost: hostName('CONSUL_HOST') ?? 'localhost',
    consulPort: int('CONSUL_PORT', 8500, 1, 65535),
    consulToken: read('CONSUL_TOKEN'),
    serviceAddress: hostName('SERVICE_ADDRESS'),
    metricsPublic: bool('METRICS_PUBLIC', false),
    otelEndpoint: read('OTEL_EXPORTER_OTLP_ENDPOINT'),
    otelServiceName: read('OTEL_SERVICE_NAME') ?? 'event-service',
    deliveryDisableAfterMs: int('DELIVERY_DISABLE_AFTER_MS', 5 * 24 * 3_600_000, 0, 365 * 24 * 3_600_000),
    adminApiKey: read('ADMIN_API_KEY'),
    rateLimitPerMinute: int('RATE_LIMIT_PER_MINUTE', 6000, 0, 100_000_000),
    rateLimitIpPerMinute: int('RATE_LIMIT_IP_PER_MINUTE', 600, 0, 100_000_000),
    authCacheTtlMs: int('AUTH_CACHE_TTL_MS', 10_000, 0, 300_000),
    authCacheMaxEntries: int('AUTH_CACHE_MAX_ENTRIES', 10_000, 1, 1_000_000),
    jwtSecret: read('JWT_SECRET'),
    jwtJwksUrl: read('JWT_JWKS_URL'),
    jwtIssuer: read('JWT_ISSUER'),
    jwtAudience: read('JWT_AUDIENCE'),
    jwtScopesClaim: read('JWT_SCOPES_CLAIM') ?? 'scope',
    jwtUserClaim: read('JWT_USER_CLAIM'),
    jwtJwksTimeoutMs: int('JWT_JWKS_TIMEOUT_MS', 5000, 100, 60_000),
  };
  if (config.deliveryLeaseMs < config.deliveryTimeoutMs + 50) {
    problems.push(
      `DELIVERY_LEASE_MS=${config.deliveryLeaseMs}: must exceed DELIVERY_TIMEOUT_MS (${config.deliveryTimeoutMs}) by at least 50`,
    );
  }
  if (config.consulToken !== undefined && !/^[\x21-\x7e]+$/.test(config.consulToken)) {
    problems.push('CONSUL_TOKEN: must be printable ASCII without spaces');
  }
  if (config.otelEndpoint !== undefined && !/^https?:\/\/[^\s]+$/.test(config.otelEndpoint)) {
    problems.push('OTEL_EXPORTER_OTLP_ENDPOINT: must be an http:// or https:// URL');
  }
  if (config.shutdownDelayMs >= config.shutdownTimeoutMs) {
    problems.push(
      `SHUTDOWN_DELAY_MS=${config.shutdownDelayMs}: must be less than SHUTDOWN_TIMEOUT_MS (${config.shutdownTimeoutMs})`,
    );
  }
  if (config.replayLeaseMs * 2 > config.natsDuplicateWindowMs) {
    problems.push(
      `REPLAY_LEASE_MS=${config.replayLeaseMs}: must be at most half of NATS_DUPLICATE_WINDOW_MS (${config.natsDuplicateWindowMs})`,
    );
  }
  if (config.adminApiKey !== undefined && !/^[\x21-\x2d\x2f-\x7e]{32,512}$/.test(config.adminApiKey)) {
    problems.push(
      'ADMIN_API_KEY: must be 32 to 512 printable ASCII characters without spaces or dots (e.g. openssl rand -hex 32)',
    );
  }
  if (config.jwtSecret !== undefined && config.jwtSecret.length < 32) {
    problems.push('JWT_SECRET: must be at least 32 characters (HS256 needs a 256-bit secret)');
  }
  if (config.jwtJwksUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(config.jwtJwksUrl)) {
    problems.push('JWT_JWKS_URL: must be an http:// or https:// URL');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}
