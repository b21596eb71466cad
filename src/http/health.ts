/** Liveness (`/health`, `/`) and readiness (`/health/ready`: store and bus checks). */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { DateTime } from './schema-helpers.js';

export interface ReadinessCheck {
  name: string;
  /** Resolves when healthy; throws with the reason otherwise. */
  check: () => Promise<void>;
  /** A degraded optional dependency reports but does not make the service unready. */
  critical: boolean;
}

export const HealthSchema = Type.Object({
  status: Type.String(),
  service: Type.String(),
  version: Type.String(),
  timestamp: DateTime(),
});

export const ReadySchema = Type.Object({
  status: Type.String({ description: '`ready`, `degraded` (an optional dependency is down) or `not_ready`' }),
  checks: Type.Record(
    Type.String(),
    Type.Object({ status: Type.String(), error: Type.Optional(Type.String()) }),
  ),
  timestamp: DateTime(),
});

export async function healthRoutes(
  app: FastifyInstance,
  deps: { version: string; checks: ReadinessCheck[]; now: () => Date; isShuttingDown: () => boolean },
): Promise<void> {
  const health = async () => ({
    status: 'healthy',
    service: 'event_service',
    version: deps.version,
    timestamp: deps.now(),
  });
  const schema = { tags: ['health'], summary: 'Liveness', response: { 200: HealthSchema } };
  app.get('/health', { schema }, health);
  app.get('/', { schema: { ...schema, hide: true } }, health);

  app.get(
    '/health/ready',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: store and bus checks',
        response: { 200: ReadySchema, 503: ReadySchema },
      },
    },
    async (_request, reply) => {
      const checks: Record<string, { status: string; error?: string }> = {};
      let ready = !deps.isShuttingDown();
      let degraded = false;
      await Promise.all(
        deps.checks.map(async ({ name, check, critical }) => {
          try {
            await check();
            checks[name] = { status: 'ok' };
          } catch (error) {
            checks[name] = { status: 'down', error: error instanceof Error ? error.message : String(error) };
            if (critical) ready = false;
            else degraded = true;
          }
        }),
      );
      if (deps.isShuttingDown()) checks.shutdown = { status: 'down', error: 'shutting down' };
      const status = !ready ? 'not_ready' : degraded ? 'degraded' : 'ready';
      return reply.code(ready ? 200 : 503).send({ status, checks, timestamp: deps.now() });
    },
  );
}
