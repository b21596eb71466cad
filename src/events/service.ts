/** Create and batch-create: normalize requests into `NewEvent`s and hand them to the one append path. */
import type { DomainError } from '../domain/errors.js';
import { ValidationError, type FieldProblem } from '../domain/errors.js';
import { normalizeCreate, type CreateEventInput, type NewEvent } from '../domain/event.js';
import type { AppendedEvent, EventStore } from '../store/index.js';

export type BatchItemOutcome =
  | { index: number; type: 'created'; appended: AppendedEvent }
  | { index: number; type: 'failed'; error: DomainError };

export interface EventService {
  create(input: CreateEventInput): Promise<AppendedEvent>;
  /** All or nothing: every problem of every item is reported before anything is stored. */
  createBatch(inputs: CreateEventInput[]): Promise<AppendedEvent[]>;
  /**
   * Each item on its own, committed in the given order (so that items of one stream get their
   * versions in that order). `index` is the item's place in the request; outcomes carry it.
   */
  createBatchPartial(items: { index: number; input: CreateEventInput }[]): Promise<BatchItemOutcome[]>;
}

export function createEventService(store: EventStore, now: () => Date): EventService {
  async function appendUnit(events: NewEvent[]): Promise<AppendedEvent[]> {
    const outcome = await store.append({ events });
    if (outcome.type === 'rejected') throw outcome.error;
    return outcome.events;
  }

  return {
    async create(input) {
      const normalized = normalizeCreate(input, 'body', now);
      if (!normalized.ok) throw new ValidationError(normalized.errors);
      const [appended] = await appendUnit([normalized.event]);
      return appended!;
    },

    async createBatch(inputs) {
      const events: NewEvent[] = [];
      const errors: FieldProblem[] = [];
      inputs.forEach((input, index) => {
        const normalized = normalizeCreate(input, `body[${index}]`, now);
        if (normalized.ok) events.push(normalized.event);
        else errors.push(...normalized.errors);
      });
      if (errors.length > 0) throw new ValidationError(errors);
      return appendUnit(events);
    },

    async createBatchPartial(items) {
      const outcomes: BatchItemOutcome[] = [];
      const units: { index: number; event: NewEvent }[] = [];
      for (const { index, input } of items) {
        const normalized = normalizeCreate(input, `body[${index}]`, now);
        if (normalized.ok) units.push({ index, event: normalized.event });
        else outcomes.push({ index, type: 'failed', error: new ValidationError(normalized.errors) });
      }
      const appended = await store.appendEach(units.map((unit) => ({ events: [unit.event] })));
      appended.forEach((outcome, i) => {
        const { index } = units[i]!;
        outcomes.push(
          outcome.type === 'rejected'
            ? { index, type: 'failed', error: outcome.error }
            : { index, type: 'created', appended: outcome.events[0]! },
        );
      });
      return outcomes.sort((a, b) => a.index - b.index);
    },
  };
}
