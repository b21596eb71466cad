/**
 * Preloaded by `npm start` (`node --import ./dist/src/observability/otel-preload.js
 * dist/src/main.js`): when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, registers the ESM loader hook
 * of the OpenTelemetry instrumentations and starts the SDK (otel.ts) before main.js and what it
 * imports (fastify, pg) are loaded, as patching requires. Without the variable it loads nothing
 * more. A configuration error is left to main.js to report.
 */
import { register } from 'node:module';
import { ConfigError, loadConfig, type Config } from '../config.js';

let config: Config | null = null;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
}

if (config?.otelEndpoint !== undefined) {
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
  const { startTelemetry } = await import('./otel.js');
  startTelemetry({ endpoint: config.otelEndpoint, serviceName: config.otelServiceName });
}
