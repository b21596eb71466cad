/**
 * The ingest edge, seen from observability: every channel hands its events to the store through a
 * store wrapped here with the channel's name, which counts what was stored
 * (`event_service_events_ingested_total{channel, source}`, idempotent repeats not counted) and
 * writes the request's trace context into the metadata of events that have none
 * (`metadata.traceparent`, `metadata.tracestate`). Messages that reach the store through NATS carry
 * the trace context in their headers instead: `tracedBus` adds it to what the frontend collector
 * publishes, `withHeaderTrace` takes it out again in the consumer.
 *
 * The trace context of the request being handled comes from a `TraceScope` (an AsyncLocalStorage
 * the app creates and its request hooks enter): the ingest code between the route and the store
 * does not need to know about traces.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Bus, InboundMessage } from '../bus/bus.js';
import type { NewEvent } from '../domain/event.js';
import type { MappedMessage } from '../ingest/backend.js';
import type { AppendOutcome, AppendUnit, EventStore } from '../store/index.js';
import type { IngestChannel, Metrics } from './metrics.js';
import { traceContextOf, traceHeaders, withTraceMetadata, type TraceContext } from './trace-context.js';

export interface TraceScope {
  /** The trace context of the request being handled; null outside a request or without one. */
  current(): TraceContext | null;
  /** Runs `fn` (and everything it starts) with `trace` as the current trace context. */
  run<T>(trace: TraceContext | null, fn: () => T): T;
}

export function createTraceScope(): TraceScope {
  const storage = new AsyncLocalStorage<TraceContext | null>();
  return {
    current: () => storage.getStore() ?? null,
    run: (trace, fn) => storage.run(trace, fn),
  };
}

function traced(event: NewEvent, trace: TraceContext | null): NewEvent {
  const metadata = withTraceMetadata(event.metadata, trace);
  return metadata === event.metadata ? event : { ...event, metadata };
}

function tracedUnit(unit: AppendUnit, trace: TraceContext | null): AppendUnit {
  return trace ? { ...unit, events: unit.events.map((event) => traced(event, trace)) } : unit;
}

export interface ObservedStoreOptions {
  channel: IngestChannel;
  metrics: Metrics;
  /** Where the request's trace context comes from; absent for channels without requests (NATS). */
  traces?: TraceScope;
}

/** The store as one channel uses it: appends counted, and traced when a request has a trace. */
export function observedStore(store: EventStore, options: ObservedStoreOptions): EventStore {
  const { channel, metrics, traces } = options;
  const count = (outcomes: readonly AppendOutcome[]) => {
    for (const outcome of outcomes) {
      if (outcome.type !== 'appended') continue;
      for (const appended of outcome.events) {
        if (!appended.replayed) metrics.eventsIngested.inc({ channel, source: appended.event.event_source });
      }
    }
  };
  return {
    ...store,
    async append(unit) {
      const outcome = await store.append(tracedUnit(unit, traces?.current() ?? null));
      count([outcome]);
      return outcome;
    },
    async appendEach(units) {
      const trace = traces?.current() ?? null;
      const outcomes = await store.appendEach(units.map((unit) => tracedUnit(unit, trace)));
      count(outcomes);
      return outcomes;
    },
  };
}

/** The bus with the request's trace context added to the headers of what is published. */
export function tracedBus(bus: Bus, traces: TraceScope): Bus {
  return {
    ...bus,
    get connected() {
      return bus.connected;
    },
    publish(subject, data, options) {
      const trace = traces.current();
      if (!trace) return bus.publish(subject, data, options);
      return bus.publish(subject, data, {
        ...options,
        headers: { ...traceHeaders(trace), ...options?.headers },
      });
    },
  };
}

/** A NATS message's event with the trace context of the message's headers, when its metadata has none. */
export function withHeaderTrace(mapped: MappedMessage, message: InboundMessage): MappedMessage {
  if (!mapped.ok) return mapped;
  const trace = traceContextOf(message.headers.traceparent, message.headers.tracestate);
  return trace ? { ok: true, event: traced(mapped.event, trace) } : mapped;
}
