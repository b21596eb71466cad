/**
 * OpenTelemetry export end to end: the service as a child process, started as `npm start` starts
 * it (the preload before main), with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a local HTTP server
 * that records what the OTLP/HTTP exporter sends. A request carrying a `traceparent` produces a
 * server span named after the route, in that trace, with the database queries as its children; the
 * stored event carries the server span's context; the probes are not traced.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ADMIN_API_KEY } from '../test-support/app.js';
import { createTestDatabase, type TestDatabase } from '../test-support/db.js';
import { Receiver } from '../test-support/receiver.js';
import { freePort } from '../test-support/service-process.js';
import { waitFor } from '../test-support/wait.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
}

interface OtlpExport {
  resourceSpans: {
    resource: { attributes: { key: string; value: { stringValue?: string } }[] };
    scopeSpans: { scope: { name: string }; spans: OtlpSpan[] }[];
  }[];
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN_ID = '00f067aa0ba902b7';

describe('OpenTelemetry export (OTLP/HTTP)', () => {
  let collector: Receiver;
  let database: TestDatabase;
  let child: ChildProcess;
  let exited: Promise<number | null>;
  let output = '';
  let url: string;

  const exports = (): OtlpExport[] =>
    collector.requests.filter((r) => r.path === '/v1/traces').map((r) => JSON.parse(r.body) as OtlpExport);
  const spans = (): OtlpSpan[] =>
    exports().flatMap((e) => e.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)));

  beforeAll(async () => {
    collector = await Receiver.start(() => ({ status: 200 }));
    database = await createTestDatabase();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    child = spawn(
      process.execPath,
      ['--import', 'tsx', '--import', './src/observability/otel-preload.ts', 'src/main.ts'],
      {
        env: {
          ...process.env,
          NATS_URL: '',
          DATABASE_URL: database.url,
          HOST: '127.0.0.1',
          PORT: String(port),
          LOG_LEVEL: 'warn',
          ADMIN_API_KEY: TEST_ADMIN_API_KEY,
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collector.port}`,
          OTEL_SERVICE_NAME: 'event-service-under-test',
          // Export within 100 ms instead of 5 s.
          OTEL_BSP_SCHEDULE_DELAY: '100',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    await waitFor(
      `the service to start:\n${output}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`the service exited:\n${output}`);
        return (await fetch(`${url}/health`)).ok || undefined;
      },
      60_000,
    );
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    await collector?.close();
    await database?.drop();
  });

  it('exports the server span of a request in the caller’s trace, with its queries, and stores its context', async () => {
    const response = await fetch(`${url}/api/v1/events/create`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${TEST_ADMIN_API_KEY}`,
        traceparent: `00-${TRACE_ID}-${CLIENT_SPAN_ID}-01`,
      },
      body: JSON.stringify({ event_type: 'otel.checked', data: { n: 1 } }),
    });
    expect(response.status).toBe(201);
    const event = (await response.json()) as { event_id: string; metadata: Record<string, unknown> };
    await fetch(`${url}/health`);

    const server = await waitFor('the server span', () =>
      spans().find((s) => s.name === 'POST /api/v1/events/create'),
    );
    expect(server.traceId).toBe(TRACE_ID);
    expect(server.parentSpanId).toBe(CLIENT_SPAN_ID);
    expect(server.attributes).toContainEqual({
      key: 'http.route',
      value: { stringValue: '/api/v1/events/create' },
    });
    // The event carries the service's span as the parent of what follows it.
    expect(event.metadata.traceparent).toBe(`00-${TRACE_ID}-${server.spanId}-01`);

    const queries = await waitFor('the query spans', () => {
      const found = spans().filter((s) => s.traceId === TRACE_ID && s.name.startsWith('pg.'));
      return found.length > 0 ? found : undefined;
    });
    expect(queries.length).toBeGreaterThan(0);

    const resource = exports()[0]!.resourceSpans[0]!.resource.attributes;
    expect(resource).toContainEqual({
      key: 'service.name',
      value: { stringValue: 'event-service-under-test' },
    });
    // Probes are not traced.
    expect(spans().some((s) => s.name.includes('/health'))).toBe(false);
  });
});
