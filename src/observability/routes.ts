/**
 * `GET /metrics`: every metric of the app in the Prometheus text format. The database state gauges
 * are read for the scrape (store-state.ts), bounded; a failed read answers all the same, with
 * `event_service_store_state_up 0`. Access: the `admin` scope, or anyone with `METRICS_PUBLIC=true`
 * (README "Observability").
 */
import type { FastifyInstance } from 'fastify';
import type { Metrics } from './metrics.js';
import type { StoreStateCollector } from './store-state.js';

export const METRICS_PATH = '/metrics';

export async function metricsRoutes(
  app: FastifyInstance,
  deps: { metrics: Metrics; storeState: StoreStateCollector },
): Promise<void> {
  app.get(
    METRICS_PATH,
    {
      schema: {
        tags: ['admin'],
        summary: 'Prometheus metrics',
        description:
          'Request latencies by route and status, events ingested by channel and source, processing and delivery outcomes and latencies, outbox and follower lag, pending work, database pool use, and the process metrics, in the Prometheus text format.',
        produces: ['text/plain'],
      },
    },
    async (_request, reply) => {
      await deps.storeState.collect();
      const body = await deps.metrics.registry.metrics();
      return reply.type(deps.metrics.registry.contentType).send(body);
    },
  );
}
