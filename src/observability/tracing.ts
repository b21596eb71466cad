/**
 * What the app asks of OpenTelemetry, through its API alone (no-ops when tracing is off, i.e. when
 * otel-preload.ts did not start the SDK): the active span's context, naming the server span after
 * the route, and flushing the buffered spans at shutdown.
 */
import { isSpanContextValid, trace, type TracerProvider } from '@opentelemetry/api';
import { traceContextOf, type TraceContext } from './trace-context.js';

/** The trace context of the active span; null when tracing is off or no span is active. */
export function activeSpanTrace(): TraceContext | null {
  const context = trace.getActiveSpan()?.spanContext();
  if (!context || !isSpanContextValid(context)) return null;
  const flags = (context.traceFlags & 0xff).toString(16).padStart(2, '0');
  return traceContextOf(`00-${context.traceId}-${context.spanId}-${flags}`, context.traceState?.serialize());
}

/** Names the active (server) span `<METHOD> <route pattern>` and sets `http.route`. */
export function nameActiveSpan(method: string, route: string | undefined): void {
  const span = trace.getActiveSpan();
  if (!span || route === undefined) return;
  span.updateName(`${method} ${route}`);
  span.setAttribute('http.route', route);
}

/** Exports the spans still buffered (at shutdown, before the process exits). */
export async function flushTraces(): Promise<void> {
  const provider = trace.getTracerProvider() as TracerProvider & {
    getDelegate?: () => TracerProvider & { forceFlush?: () => Promise<void> };
  };
  await provider.getDelegate?.().forceFlush?.();
}
