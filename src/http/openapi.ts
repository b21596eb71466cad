/** OpenAPI 3.1 generated from the route schemas; UI at /docs, document at /docs/json. */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { BEARER_SCHEME } from '../auth/plugin.js';

export async function registerOpenApi(app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'event-service',
        version,
        description:
          'Event hub: every system sends "what happened" here and gets it back by id, filter, stream, statistics, projections and replay. Errors are `{detail, code, errors?}`.',
      },
      tags: [
        { name: 'events', description: 'Create, read, query and count events' },
        { name: 'streams', description: 'Per-entity streams with versions' },
        {
          name: 'projections',
          description:
            'Per-entity state folded from the stream: the default projection (snapshots every SNAPSHOT_EVERY events) and declared ones (a reducer per event type, kept current by the projector, rebuildable)',
        },
        {
          name: 'replay',
          description:
            'Replay jobs: stored events republished in their original order to `event.replayed.{target}`, optionally run through the processors again; dry runs, progress, cancel',
        },
        { name: 'health', description: 'Liveness and readiness' },
        {
          name: 'auth',
          description:
            'API keys (create, shown once; list; revoke) and the principal of a credential. Protected endpoints take `Authorization: Bearer <API key or JWT>`: 401 without a valid one, 403 without the scope',
        },
        {
          name: 'frontend',
          description:
            'Public collector for browsers (no credentials, CORS, sendBeacon bodies, rate-limited per client)',
        },
        { name: 'admin', description: 'Operator endpoints (dead letters of the ingest channels)' },
        {
          name: 'processing',
          description:
            'Processors (webhook, publish, redis_stream, rabbitmq, custom) that act on stored events; dead letters, retries and results',
        },
        {
          name: 'subscriptions',
          description:
            'Webhook subscriptions: matching events are POSTed to a callback URL, signed after Standard Webhooks, retried, logged, redeliverable',
        },
        {
          name: 'ingest',
          description:
            'Other ways in: the RudderStack webhook and the Segment/RudderStack-compatible tracking API (`/v1/*`)',
        },
      ],
      components: {
        securitySchemes: {
          // The route schemas name it (src/auth/plugin.ts writes each protected route's `security`).
          [BEARER_SCHEME]: {
            type: 'http',
            scheme: 'bearer',
            description:
              'An API key (`esk_…`, scopes `events:read`, `events:write`, `admin`) or a JWT (`JWT_SECRET` / `JWT_JWKS_URL`). Public endpoints need none.',
          },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}
