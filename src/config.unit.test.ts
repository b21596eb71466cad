import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    expect(loadConfig({})).toMatchObject({
      port: 8230,
      host: '0.0.0.0',
      databaseUrl: undefined,
      dataDir: './data',
      logLevel: 'info',
      batchMaxEvents: 1000,
      bodyLimitBytes: 10 * 1024 * 1024,
    });
  });
  it('reports every bad value with its name', () => {
    try {
      loadConfig({ PORT: 'abc', BATCH_MAX_EVENTS: '0', LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://x' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as Error).message;
      for (const name of ['PORT', 'BATCH_MAX_EVENTS', 'LOG_LEVEL', 'DATABASE_URL'])
        expect(message).toContain(name);
    }
  });
  it('reads the ingest channels: write keys as a trimmed list, the webhook secret, the tracking limits', () => {
    expect(loadConfig({})).toMatchObject({
      writeKeys: [],
      rudderstackWebhookSecret: undefined,
      trackingMaxMessageBytes: 32 * 1024,
      trackingMaxBatchBytes: 500 * 1024,
    });
    const config = loadConfig({
      WRITE_KEYS: ' k1 ,k2,, ',
      RUDDERSTACK_WEBHOOK_SECRET: 's',
      TRACKING_MAX_MESSAGE_BYTES: '2048',
      TRACKING_MAX_BATCH_BYTES: '4096',
    });
    expect(config).toMatchObject({
      writeKeys: ['k1', 'k2'],
      rudderstackWebhookSecret: 's',
      trackingMaxMessageBytes: 2048,
      trackingMaxBatchBytes: 4096,
    });
    expect(Object.isFrozen(config.writeKeys)).toBe(true);
    expect(() => loadConfig({ TRACKING_MAX_MESSAGE_BYTES: '10' })).toThrow(/TRACKING_MAX_MESSAGE_BYTES/);
  });
  it('reads the declared projections settings', () => {
    expect(loadConfig({})).toMatchObject({ projectionPollMs: 250, projectionBatchSize: 5000 });
    expect(loadConfig({ PROJECTION_POLL_MS: '20', PROJECTION_BATCH_SIZE: '100' })).toMatchObject({
      projectionPollMs: 20,
      projectionBatchSize: 100,
    });
    expect(() => loadConfig({ PROJECTION_BATCH_SIZE: '5' })).toThrow(/PROJECTION_BATCH_SIZE/);
  });
  it('reads the authentication settings and checks the secrets', () => {
    expect(loadConfig({})).toMatchObject({
      adminApiKey: undefined,
      rateLimitPerMinute: 6000,
      rateLimitIpPerMinute: 600,
      authCacheTtlMs: 10_000,
      authCacheMaxEntries: 10_000,
      jwtSecret: undefined,
      jwtJwksUrl: undefined,
      jwtScopesClaim: 'scope',
      jwtUserClaim: undefined,
      jwtJwksTimeoutMs: 5000,
    });
    const key = 'a'.repeat(32);
    expect(
      loadConfig({
        ADMIN_API_KEY: key,
        RATE_LIMIT_PER_MINUTE: '0',
        JWT_SECRET: 's'.repeat(32),
        JWT_JWKS_URL: 'https://idp.example.com/jwks.json',
        JWT_ISSUER: 'https://idp.example.com/',
        JWT_AUDIENCE: 'event-service',
        JWT_SCOPES_CLAIM: 'realm_access.roles',
        JWT_USER_CLAIM: 'uid',
      }),
    ).toMatchObject({ adminApiKey: key, rateLimitPerMinute: 0, jwtScopesClaim: 'realm_access.roles' });
    expect(() => loadConfig({ ADMIN_API_KEY: 'short' })).toThrow(/ADMIN_API_KEY/);
    expect(() => loadConfig({ ADMIN_API_KEY: `${'a'.repeat(32)}.b` })).toThrow(/ADMIN_API_KEY/);
    expect(() => loadConfig({ JWT_SECRET: 'short' })).toThrow(/JWT_SECRET/);
    expect(() => loadConfig({ JWT_JWKS_URL: 'ftp://x' })).toThrow(/JWT_JWKS_URL/);
  });
  it('is frozen', () => {
    expect(Object.isFrozen(loadConfig({}))).toBe(true);
  });
  it('reads the frontend collector settings and the trusted proxies', () => {
    expect(loadConfig({})).toMatchObject({
      frontendBodyLimitBytes: 1024 * 1024,
      frontendBatchMaxEvents: 500,
      frontendRateLimitPerMinute: 1200,
      frontendCorsOrigins: ['*'],
      trustedProxies: [],
    });
    const config = loadConfig({
      FRONTEND_BODY_LIMIT_BYTES: '2048',
      FRONTEND_BATCH_MAX_EVENTS: '10',
      FRONTEND_RATE_LIMIT_PER_MINUTE: '0',
      FRONTEND_CORS_ORIGINS: 'https://a.example.com, http://localhost:3000',
      TRUSTED_PROXIES: ' 10.0.0.0/8, 127.0.0.1 ,::1,2001:db8::/32',
    });
    expect(config).toMatchObject({
      frontendBodyLimitBytes: 2048,
      frontendBatchMaxEvents: 10,
      frontendRateLimitPerMinute: 0,
      frontendCorsOrigins: ['https://a.example.com', 'http://localhost:3000'],
      trustedProxies: ['10.0.0.0/8', '127.0.0.1', '::1', '2001:db8::/32'],
    });
    expect(Object.isFrozen(config.trustedProxies)).toBe(true);
    expect(() => loadConfig({ TRUSTED_PROXIES: '10.0.0.0/8,proxy.local' })).toThrow(
      /TRUSTED_PROXIES.*proxy\.local/,
    );
    expect(() => loadConfig({ TRUSTED_PROXIES: '10.0.0.0/40' })).toThrow(/TRUSTED_PROXIES/);
    expect(() => loadConfig({ FRONTEND_CORS_ORIGINS: 'app.example.com' })).toThrow(/FRONTEND_CORS_ORIGINS/);
    expect(() => loadConfig({ FRONTEND_BATCH_MAX_EVENTS: '0' })).toThrow(/FRONTEND_BATCH_MAX_EVENTS/);
  });
  it('reads the processing settings with their defaults and bounds', () => {
    expect(loadConfig({})).toMatchObject({
      processingEnabled: true,
      processingPollMs: 250,
      processingLeaseMs: 60_000,
      processingBatchSize: 1_000,
      processingConcurrency: 64,
      processingParallelBatches: 3,
      processingTimeoutMs: 10_000,
      processingMaxRetries: 3,
      processingRetryBaseMs: 2_000,
      processingRetryMaxMs: 300_000,
    });
    expect(
      loadConfig({ PROCESSING_ENABLED: 'false', PROCESSING_POLL_MS: '20', PROCESSING_MAX_RETRIES: '0' }),
    ).toMatchObject({ processingEnabled: false, processingPollMs: 20, processingMaxRetries: 0 });
    expect(() => loadConfig({ PROCESSING_LEASE_MS: '10', PROCESSING_BATCH_SIZE: '0' })).toThrow(
      /PROCESSING_LEASE_MS[\s\S]*PROCESSING_BATCH_SIZE/,
    );
  });
  it('reads the delivery settings with their defaults and bounds', () => {
    expect(loadConfig({})).toMatchObject({
      deliveryTimeoutMs: 15_000,
      deliveryConcurrency: 1024,
      deliveryPerSubscriptionConcurrency: 256,
      deliveryPollMs: 100,
      deliveryLeaseMs: 60_000,
      deliveryDisableAfterMs: 5 * 24 * 3_600_000,
    });
    expect(
      loadConfig({ DELIVERY_TIMEOUT_MS: '300', DELIVERY_LEASE_MS: '2000', DELIVERY_DISABLE_AFTER_MS: '0' }),
    ).toMatchObject({ deliveryTimeoutMs: 300, deliveryLeaseMs: 2000, deliveryDisableAfterMs: 0 });
    expect(() => loadConfig({ DELIVERY_TIMEOUT_MS: '5000', DELIVERY_LEASE_MS: '5000' })).toThrow(
      /DELIVERY_LEASE_MS=5000: must exceed DELIVERY_TIMEOUT_MS/,
    );
    expect(() => loadConfig({ DELIVERY_CONCURRENCY: '0' })).toThrow(/DELIVERY_CONCURRENCY/);
  });
  it('reads the replay settings with their defaults and bounds', () => {
    expect(loadConfig({})).toMatchObject({
      replayPageSize: 2000,
      replayLeaseMs: 30_000,
      replayPollMs: 500,
      replayConcurrency: 1,
    });
    expect(
      loadConfig({
        REPLAY_PAGE_SIZE: '100',
        REPLAY_LEASE_MS: '2000',
        REPLAY_POLL_MS: '20',
        REPLAY_CONCURRENCY: '4',
      }),
    ).toMatchObject({ replayPageSize: 100, replayLeaseMs: 2000, replayPollMs: 20, replayConcurrency: 4 });
    expect(() => loadConfig({ REPLAY_PAGE_SIZE: '0', REPLAY_CONCURRENCY: '17' })).toThrow(
      /REPLAY_PAGE_SIZE[\s\S]*REPLAY_CONCURRENCY/,
    );
    // A page published again when a job resumes must still fall in the duplicate window.
    expect(() => loadConfig({ REPLAY_LEASE_MS: '70000' })).toThrow(
      /REPLAY_LEASE_MS=70000: must be at most half of NATS_DUPLICATE_WINDOW_MS \(120000\)/,
    );
    expect(loadConfig({ REPLAY_LEASE_MS: '70000', NATS_DUPLICATE_WINDOW_MS: '600000' }).replayLeaseMs).toBe(
      70_000,
    );
  });
  it('reads the shutdown settings: the delay must leave room within the timeout', () => {
    expect(loadConfig({})).toMatchObject({ shutdownTimeoutMs: 25_000, shutdownDelayMs: 0 });
    expect(loadConfig({ SHUTDOWN_TIMEOUT_MS: '30000', SHUTDOWN_DELAY_MS: '5000' })).toMatchObject({
      shutdownTimeoutMs: 30_000,
      shutdownDelayMs: 5000,
    });
    expect(() => loadConfig({ SHUTDOWN_TIMEOUT_MS: '500' })).toThrow(/SHUTDOWN_TIMEOUT_MS/);
    expect(() => loadConfig({ SHUTDOWN_TIMEOUT_MS: '5000', SHUTDOWN_DELAY_MS: '5000' })).toThrow(
      /SHUTDOWN_DELAY_MS=5000: must be less than SHUTDOWN_TIMEOUT_MS \(5000\)/,
    );
  });
  it('reads the Consul settings: off by default, host names and addresses without scheme or port', () => {
    expect(loadConfig({})).toMatchObject({
      consulEnabled: false,
      consulHost: 'localhost',
      consulPort: 8500,
      consulToken: undefined,
      serviceAddress: undefined,
    });
    expect(
      loadConfig({
        CONSUL_ENABLED: 'true',
        CONSUL_HOST: 'consul.internal',
        CONSUL_PORT: '8501',
        CONSUL_TOKEN: 'b1gs3cr3t-token',
        SERVICE_ADDRESS: '[fd00::5]',
      }),
    ).toMatchObject({
      consulEnabled: true,
      consulHost: 'consul.internal',
      consulPort: 8501,
      consulToken: 'b1gs3cr3t-token',
      serviceAddress: 'fd00::5',
    });
    expect(loadConfig({ SERVICE_ADDRESS: '10.0.0.7' }).serviceAddress).toBe('10.0.0.7');
    expect(() =>
      loadConfig({ CONSUL_HOST: 'http://consul:8500', SERVICE_ADDRESS: 'a b', CONSUL_TOKEN: 'x y' }),
    ).toThrow(/CONSUL_HOST[\s\S]*SERVICE_ADDRESS[\s\S]*CONSUL_TOKEN/);
    expect(() => loadConfig({ CONSUL_PORT: '0' })).toThrow(/CONSUL_PORT/);
  });
  it('reads the observability settings: /metrics protected and no trace export by default', () => {
    expect(loadConfig({})).toMatchObject({
      metricsPublic: false,
      otelEndpoint: undefined,
      otelServiceName: 'event-service',
    });
    expect(
      loadConfig({
        METRICS_PUBLIC: 'true',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_SERVICE_NAME: 'events-eu',
      }),
    ).toMatchObject({
      metricsPublic: true,
      otelEndpoint: 'http://collector:4318',
      otelServiceName: 'events-eu',
    });
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT/,
    );
    expect(() => loadConfig({ METRICS_PUBLIC: 'maybe' })).toThrow(/METRICS_PUBLIC/);
  });
});
