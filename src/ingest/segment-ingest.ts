/**
 * Ingest of Segment-style messages, shared by the RudderStack webhook and the tracking API:
 * validate each message on its own, map it (`segment.ts`), store the valid ones through the one
 * append path with `appendEach` (each message its own unit, so one bad message never blocks the
 * others), and report per message. Resolves only after the commit.
 */
import type { ErrorObject } from 'ajv';
import {
  InvalidPayloadError,
  PayloadTooLargeError,
  ValidationError,
  type DomainError,
  type FieldProblem,
} from '../domain/errors.js';
import type { JsonObject, NewEvent } from '../domain/event.js';
import { compileBodySchema, toFieldProblems } from '../http/validation.js';
import type { EventStore } from '../store/index.js';
import { SegmentMessageSchema } from './segment-schemas.js';
import { messageBytes, toNewEvent, type IngestChannel, type SegmentMessage } from './segment.js';

export type MessageOutcome =
  | { index: number; type: 'stored'; eventId: string; replayed: boolean }
  | { index: number; type: 'rejected'; path: string; error: DomainError };

export interface IngestRequest {
  messages: unknown[];
  channel: IngestChannel;
  /** Where message `index` is in the request, for error paths (`body[3]`, `body.batch[3]`). */
  path(index: number): string;
  receivedAt: Date;
  batch?: { context?: JsonObject | null; sentAt?: unknown };
  /** Messages larger than this (JSON bytes) are rejected; unlimited when absent. */
  maxMessageBytes?: number;
}

export interface SegmentIngest {
  /**
   * Stores every message that can be stored and reports each one, in request order. Throws
   * `InvalidPayloadError` when none can be (the request as a whole can never succeed), and
   * `StoreUnavailableError` when the store cannot be reached (nothing is acknowledged).
   */
  ingest(request: IngestRequest): Promise<MessageOutcome[]>;
}

const validateMessage = compileBodySchema(SegmentMessageSchema);

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A message as the schema sees it: `type` in lower case (the seed compares it case-insensitively). */
function canonical(raw: JsonObject): JsonObject {
  return typeof raw.type === 'string' ? { ...raw, type: raw.type.toLowerCase() } : raw;
}

/** Checks one message; the problems name its fields under `path`. */
export function checkMessage(
  raw: unknown,
  path: string,
  maxMessageBytes?: number,
): { ok: true; message: SegmentMessage } | { ok: false; error: DomainError } {
  if (!isObject(raw)) {
    return { ok: false, error: new ValidationError([{ path, message: 'must be an object' }]) };
  }
  if (maxMessageBytes !== undefined && messageBytes(raw) > maxMessageBytes) {
    return {
      ok: false,
      error: new PayloadTooLargeError(`Message is larger than ${maxMessageBytes} bytes`),
    };
  }
  const message = canonical(raw);
  if (!validateMessage(message)) {
    // `if`/`then` adds a summary error beside the precise one (`event is required`).
    const errors = (validateMessage.errors ?? []).filter((e: ErrorObject) => e.keyword !== 'if');
    return { ok: false, error: new ValidationError(toFieldProblems(errors, 'body', path)) };
  }
  return { ok: true, message: message as SegmentMessage };
}

/** The problems of a rejected message, as field problems under its path. */
export function problemsOf(outcome: Extract<MessageOutcome, { type: 'rejected' }>): FieldProblem[] {
  const { error, path } = outcome;
  if (error instanceof ValidationError) {
    // The store names the whole body; this names the message.
    return error.errors.map((problem) =>
      problem.path === 'body' ? { path, message: problem.message } : problem,
    );
  }
  if (error instanceof PayloadTooLargeError) {
    return [{ path, message: error.message.replace(/^Message /, '') }];
  }
  return [{ path, message: error.message }];
}

export function createSegmentIngest(store: EventStore): SegmentIngest {
  return {
    async ingest(request) {
      const outcomes: MessageOutcome[] = [];
      const units: { index: number; event: NewEvent }[] = [];
      request.messages.forEach((raw, index) => {
        const path = request.path(index);
        const checked = checkMessage(raw, path, request.maxMessageBytes);
        if (!checked.ok) {
          outcomes.push({ index, type: 'rejected', path, error: checked.error });
          return;
        }
        const mapped = toNewEvent(checked.message, {
          channel: request.channel,
          path,
          receivedAt: request.receivedAt,
          batch: request.batch,
        });
        if (mapped.ok) units.push({ index, event: mapped.event });
        else outcomes.push({ index, type: 'rejected', path, error: new ValidationError(mapped.errors) });
      });

      const appended = await store.appendEach(units.map((unit) => ({ events: [unit.event] })));
      appended.forEach((outcome, i) => {
        const { index } = units[i]!;
        if (outcome.type === 'rejected') {
          outcomes.push({ index, type: 'rejected', path: request.path(index), error: outcome.error });
        } else {
          const [stored] = outcome.events;
          outcomes.push({
            index,
            type: 'stored',
            eventId: stored!.event.event_id,
            replayed: stored!.replayed,
          });
        }
      });
      outcomes.sort((a, b) => a.index - b.index);

      if (outcomes.length > 0 && outcomes.every((outcome) => outcome.type === 'rejected')) {
        throw new InvalidPayloadError(
          outcomes.flatMap((outcome) => (outcome.type === 'rejected' ? problemsOf(outcome) : [])),
        );
      }
      return outcomes;
    },
  };
}

/** What a 2xx answer reports about the messages that were not stored (empty when all were). */
export function rejectedReport(
  outcomes: MessageOutcome[],
): { index: number; code: string; detail: string; errors: FieldProblem[] }[] {
  return outcomes.flatMap((outcome) =>
    outcome.type === 'rejected'
      ? [
          {
            index: outcome.index,
            code: outcome.error.code,
            detail: outcome.error.message,
            errors: problemsOf(outcome),
          },
        ]
      : [],
  );
}
