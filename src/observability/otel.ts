/**
 * OpenTelemetry trace export (only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set): the Node SDK with
 * the OTLP/HTTP trace exporter and two instrumentations: `http` (a server span per request, the
 * incoming `traceparent` continued; src/observability/http.ts names it after the route pattern)
 * and `pg` (a span per query, only inside a traced request: background loops would otherwise make
 * a root span per poll). Started by otel-preload.ts, before the modules it patches are loaded.
 */
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { NodeSDK } from '@opentelemetry/sdk-node';

/** Requests not traced: probes and scrapes, which come every few seconds and say nothing. */
const UNTRACED_PATHS = new Set(['/health', '/health/ready', '/metrics']);

export interface TelemetryOptions {
  /** Base URL of the OTLP/HTTP receiver; spans go to `<endpoint>/v1/traces`. */
  endpoint: string;
  serviceName: string;
}

export function startTelemetry(options: TelemetryOptions): NodeSDK {
  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    traceExporter: new OTLPTraceExporter({ url: `${options.endpoint.replace(/\/+$/, '')}/v1/traces` }),
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) => UNTRACED_PATHS.has((request.url ?? '').split('?')[0]!),
      }),
      new PgInstrumentation({ requireParentSpan: true }),
    ],
  });
  sdk.start();
  return sdk;
}
