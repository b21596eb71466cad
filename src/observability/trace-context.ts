/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/), pure: parsing `traceparent`, carrying
 * `tracestate` beside it, and the one place where a trace context goes into an event's metadata and
 * comes out of it again (`metadata.traceparent`, `metadata.tracestate`).
 */
import type { JsonObject } from '../domain/event.js';

export interface TraceContext {
  /** A valid version-00 `traceparent`. */
  traceparent: string;
  /** The vendors' `tracestate`, carried unchanged; absent when none came or it was not usable. */
  tracestate?: string;
}

export interface Traceparent {
  traceId: string;
  parentId: string;
  flags: string;
}

/** Longest `tracestate` carried (the spec lets a carrier drop what does not fit in 512 characters). */
export const TRACESTATE_MAX = 512;

const VERSION_00 = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
/** A later version: the first four fields as in 00, then more, separated by a dash. */
const LATER_VERSION = /^(?!ff)[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;

/**
 * Parses a `traceparent` value; null when it is not one a receiver may use (wrong shape, upper
 * case, version ff, an all-zero trace or parent id). A later version is read as its first four
 * fields, as the spec asks.
 */
export function parseTraceparent(value: unknown): Traceparent | null {
  if (typeof value !== 'string' || value.length < 55 || value.length > 512) return null;
  const match = value.startsWith('00-') ? VERSION_00.exec(value) : LATER_VERSION.exec(value);
  if (!match) return null;
  const [, traceId, parentId, flags] = match as unknown as [string, string, string, string];
  if (/^0+$/.test(traceId) || /^0+$/.test(parentId)) return null;
  return { traceId, parentId, flags };
}

export function formatTraceparent(parent: Traceparent): string {
  return `00-${parent.traceId}-${parent.parentId}-${parent.flags}`;
}

/** A `tracestate` worth carrying: printable ASCII within the length limit, else nothing. */
function usableTracestate(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  if (trimmed === '' || trimmed.length > TRACESTATE_MAX || !/^[\x20-\x7e]+$/.test(trimmed)) return undefined;
  return trimmed;
}

/** The trace context of a pair of values (HTTP headers, NATS headers, metadata); null without a valid `traceparent`. */
export function traceContextOf(traceparent: unknown, tracestate: unknown): TraceContext | null {
  const parsed = parseTraceparent(traceparent);
  if (!parsed) return null;
  const state = usableTracestate(tracestate);
  return state === undefined
    ? { traceparent: formatTraceparent(parsed) }
    : { traceparent: formatTraceparent(parsed), tracestate: state };
}

/** The trace context an event carries in its metadata (what the client or the ingest put there). */
export function traceOfMetadata(metadata: unknown): TraceContext | null {
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) return null;
  const { traceparent, tracestate } = metadata as JsonObject;
  return traceContextOf(traceparent, tracestate);
}

/**
 * The metadata with the trace context added; unchanged when the client set `traceparent` itself
 * (valid or not: what the client wrote is stored as written).
 */
export function withTraceMetadata(metadata: JsonObject, trace: TraceContext | null): JsonObject {
  if (!trace || 'traceparent' in metadata) return metadata;
  return trace.tracestate === undefined
    ? { ...metadata, traceparent: trace.traceparent }
    : { ...metadata, traceparent: trace.traceparent, tracestate: trace.tracestate };
}

/** `traceparent` (and `tracestate`) as outgoing headers (NATS, webhooks); empty without a context. */
export function traceHeaders(trace: TraceContext | null): Record<string, string> {
  if (!trace) return {};
  return trace.tracestate === undefined
    ? { traceparent: trace.traceparent }
    : { traceparent: trace.traceparent, tracestate: trace.tracestate };
}
