import { describe, expect, it } from 'vitest';
import { Access, accessFor, policyEntry, policyWith, POLICY } from './policy.js';

describe('the access policy', () => {
  it('gives each route of the seed contract its access', () => {
    expect(accessFor('GET', '/health')).toBe(Access.Public);
    expect(accessFor('HEAD', '/health')).toBe(Access.Public);
    expect(accessFor('GET', '/docs/json')).toBe(Access.Public);
    expect(accessFor('POST', '/api/v1/events/frontend')).toBe(Access.Public);
    expect(accessFor('OPTIONS', '/api/v1/events/frontend/batch')).toBe(Access.Public);
    expect(accessFor('POST', '/webhooks/rudderstack')).toBe(Access.Public);
    expect(accessFor('POST', '/v1/batch')).toBe(Access.Public);
    expect(accessFor('POST', '/api/v1/events/create')).toBe(Access.Write);
    expect(accessFor('POST', '/api/v1/events/batch')).toBe(Access.Write);
    expect(accessFor('GET', '/api/v1/events/:event_id')).toBe(Access.Read);
    expect(accessFor('POST', '/api/v1/events/query')).toBe(Access.Read);
    expect(accessFor('GET', '/api/v1/events/statistics')).toBe(Access.Read);
    expect(accessFor('GET', '/api/v1/events/stream/:stream_id')).toBe(Access.Read);
    expect(accessFor('GET', '/api/v1/events/projections/:entity_type/:entity_id')).toBe(Access.Read);
    for (const [method, url] of [
      ['POST', '/api/v1/events/replay'],
      ['GET', '/api/v1/events/subscriptions'],
      ['DELETE', '/api/v1/events/subscriptions/:subscription_id'],
      ['PUT', '/api/v1/events/processors/:processor_id/toggle'],
      ['POST', '/api/v1/events/projections'],
      ['POST', '/api/v1/events/projections/:name/rebuild'],
      ['GET', '/api/v1/events/dead-letters'],
      ['POST', '/api/v1/auth/keys'],
      ['DELETE', '/api/v1/auth/keys/:key_id'],
    ] as const) {
      expect(accessFor(method, url), `${method} ${url}`).toBe(Access.Admin);
    }
  });
  it('makes /metrics public only with METRICS_PUBLIC', () => {
    expect(accessFor('GET', '/metrics')).toBe(Access.Admin);
    expect(accessFor('GET', '/metrics', policyWith({ metricsPublic: false }))).toBe(Access.Admin);
    expect(accessFor('GET', '/metrics', policyWith({ metricsPublic: true }))).toBe(Access.Public);
  });
  it('fails closed: a route without an entry needs admin', () => {
    expect(policyEntry('GET', '/api/v1/something-new')).toBeUndefined();
    expect(accessFor('GET', '/api/v1/something-new')).toBe(Access.Admin);
    // Prefix entries end with `*`; the exact ones match only themselves.
    expect(accessFor('POST', '/health')).toBe(Access.Admin);
    expect(accessFor('GET', '/api/v1/events/create')).toBe(Access.Admin);
  });
  it('is a table of unique, well-formed entries', () => {
    const keys = POLICY.map((entry) => `${entry.method} ${entry.url}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const entry of POLICY) {
      expect(entry.method).toMatch(/^(\*|GET|POST|PUT|DELETE|OPTIONS)$/);
      expect(entry.url.startsWith('/')).toBe(true);
    }
  });
});
