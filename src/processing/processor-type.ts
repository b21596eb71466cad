/**
 * What a processor type is: how its config is checked at registration and how it acts on one
 * event. The built-in types (`types/`) and an embedding program's own types implement the same
 * interface; `buildApp` and `startWorkers` take extra types as `processorTypes`.
 */
import type { Logger } from 'pino';
import type { FieldProblem } from '../domain/errors.js';
import type { StoredEvent } from '../domain/event.js';

export interface ProcessorInfo {
  processor_id: string;
  processor_name: string;
  processor_type: string;
}

export interface ValidateContext {
  /** WEBHOOK_ALLOW_PRIVATE_NETWORKS: URLs may point at loopback and private addresses. */
  allowPrivateNetworks: boolean;
}

export interface RunContext {
  processor: ProcessorInfo;
  /** Aborted when the run's time is up (or the engine stops): stop waiting, the result is ignored. */
  signal: AbortSignal;
  /** The time this run has, ms (the processor's own limit, or less when the batch is near its end). */
  timeoutMs: number;
  logger?: Logger;
  /** Set when a replay (`reprocess: true`) runs the processor again on an event it already ran on. */
  replayId?: string;
  /**
   * The event as JSON text: the fields and values `JSON.stringify(event)` writes (the spacing may
   * differ). The engine has it from the database with the claim; a type that sends the whole event
   * should send this rather than serialize the event again.
   */
  eventJson(): string;
}

/**
 * The id of this run's delivery for receivers that deduplicate: stable across the retries of one
 * event for one processor, and new for each replay that runs it again (`<event_id>:<processor_id>`,
 * then `:replay:<replay_id>`).
 */
export function deliveryKey(
  event: { event_id: string },
  context: RunContext,
  encode: (part: string) => string = (part) => part,
): string {
  const key = `${encode(event.event_id)}:${encode(context.processor.processor_id)}`;
  return context.replayId === undefined ? key : `${key}:replay:${encode(context.replayId)}`;
}

/**
 * What `run` may return. Returning nothing is a success; throwing is a retryable failure (like
 * `{type: 'retry'}`); `{type: 'failed'}` is a failure that retrying cannot fix, and makes the event
 * a dead letter at once.
 */
export type ProcessorResult =
  | { type: 'success'; message?: string }
  | { type: 'retry'; message: string }
  | { type: 'failed'; message: string };

export interface ProcessorType {
  /** One line for people (README, errors that list the known types). */
  readonly description?: string;
  /**
   * Checks a config at registration and update. Returns every problem, each with its path inside
   * the config (`url`, `headers.x-token`); an empty list accepts it. May be async (DNS lookups).
   */
  validate(
    config: Record<string, unknown>,
    context: ValidateContext,
  ): FieldProblem[] | Promise<FieldProblem[]>;
  /**
   * Acts on one event. Runs at least once per matching event and processor (again after a crash
   * or a lost acknowledgement), so it should be idempotent or tolerate repeats:
   * `${event.event_id}:${processor_id}` is a stable key for that. Never runs twice at the same time
   * for the same event and processor.
   */
  run(
    event: StoredEvent,
    config: Record<string, unknown>,
    context: RunContext,
  ): Promise<ProcessorResult | void>;
  /** Releases connections; called when the workers stop. */
  close?(): Promise<void>;
}

export type ProcessorTypes = Readonly<Record<string, ProcessorType>>;

/** Thrown by a type's `run` for a failure retrying cannot fix (same as returning `{type:'failed'}`). */
export class PermanentProcessorError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentProcessorError';
  }
}
