/**
 * The event store: the one append path (grouped into few transactions) and the reads, over a
 * driver-neutral `Db`. Maps driver failures to `StoreUnavailableError` so callers see one error.
 */
import { StoreUnavailableError } from '../domain/errors.js';
import { EventStatus, type StoredEvent } from '../domain/event.js';
import { appendGroup, type AppendOutcome, type AppendUnit } from './append.js';
import { guarded, type Db } from './db.js';
import { GroupCommitter } from './group-commit.js';
import {
  getEvent,
  queryEvents,
  listStreams,
  readStream,
  type EventFilter,
  type EventPage,
  type PageRequest,
  type StreamList,
  type StreamListOptions,
  type StreamRead,
} from './reads.js';
import { getStatistics, type Statistics, type StatisticsFilter } from './statistics.js';

export type { AppendOutcome, AppendUnit, AppendedEvent } from './append.js';
export type { Cursor, EventFilter, EventPage, PageRequest, StreamList, StreamRead } from './reads.js';
export type { Statistics, StatisticsFilter } from './statistics.js';

export interface EventStore {
  readonly db: Db;
  /** Appends one all-or-nothing unit; concurrent calls share transactions. */
  append(unit: AppendUnit): Promise<AppendOutcome>;
  /** Appends independent units in one transaction, in order: one outcome per unit. */
  appendEach(units: AppendUnit[]): Promise<AppendOutcome[]>;
  getEvent(eventId: string): Promise<StoredEvent | null>;
  queryEvents(filter: EventFilter, page: PageRequest): Promise<EventPage>;
  /** With `userId`: only streams with that user's events, described by them alone. */
  listStreams(options: StreamListOptions): Promise<StreamList>;
  /** With `userId`: only that user's events of the stream; null when it has none. */
  readStream(
    streamId: string,
    options: { fromVersion?: number; direction: 'forward' | 'backward'; limit: number; userId?: string },
  ): Promise<StreamRead | null>;
  statistics(filter: StatisticsFilter): Promise<Statistics>;
  /** Round trip to the database; throws StoreUnavailableError when it does not answer. */
  ping(timeoutMs: number): Promise<void>;
  /** Waits for appends in flight. */
  drain(): Promise<void>;
}

export interface StoreOptions {
  /** Largest number of events in one transaction. */
  maxGroupEvents?: number;
  now?: () => Date;
  /** Called after every commit that stored events (wakes the outbox relay and the other followers). */
  onAppended?: (appended: Appended) => void;
  /** Called with the number of events each append transaction was given (group-commit metrics). */
  onGroup?: (events: number) => void;
}

/** What one commit stored. */
export interface Appended {
  /** The new events (not idempotent repeats), in position order, as a read would return them. */
  events: StoredEvent[];
  /** Some of them wait for processing (wakes the processing engine). */
  pending: boolean;
}

export function createEventStore(db: Db, options: StoreOptions = {}): EventStore {
  const now = options.now ?? (() => new Date());
  // An item is a list of units that must commit in one transaction, in order (`appendEach`);
  // a group never splits an item.
  const committer = new GroupCommitter<AppendUnit[], AppendOutcome[]>(
    async (items) => {
      const units = items.flat();
      options.onGroup?.(units.reduce((sum, unit) => sum + unit.events.length, 0));
      const outcomes = await appendGroup(db, units);
      const events: StoredEvent[] = [];
      for (const outcome of outcomes) {
        if (outcome.type !== 'appended') continue;
        for (const appended of outcome.events) if (!appended.replayed) events.push(appended.event);
      }
      if (events.length > 0) {
        events.sort((a, b) => a.position - b.position);
        options.onAppended?.({ events, pending: events.some((e) => e.status === EventStatus.PENDING) });
      }
      let at = 0;
      return items.map((units) => outcomes.slice(at, (at += units.length)));
    },
    {
      // Appends serialize on the position lock (follower.ts): a second small group in flight only
      // waits for the first, while the queue behind one group becomes the next, larger group.
      // Measured at 64 concurrent single creates: 1 in flight ~6,600/s p99 20 ms, 2 ~5,600/s
      // p99 25 ms, 4 ~4,800/s p99 24 ms. Large groups (batches) do better two at a time: one
      // encodes and decodes its thousands of rows while the other is in the database
      // (1000-event batches: ~14k -> ~17k events/s). PGlite has one connection.
      maxInFlight: db.kind === 'pglite' ? 1 : 2,
      parallelWeight: 1000,
      maxGroupWeight: options.maxGroupEvents ?? 5000,
      weight: (units) => units.reduce((sum, unit) => sum + unit.events.length, 0),
    },
  );
  return {
    db,
    append: async (unit) => (await committer.submit([unit]))[0]!,
    appendEach: async (units) => (units.length === 0 ? [] : committer.submit(units)),
    getEvent: (eventId) => guarded(() => getEvent(db, eventId)),
    queryEvents: (filter, page) => guarded(() => queryEvents(db, filter, page)),
    listStreams: (listOptions) => guarded(() => listStreams(db, listOptions)),
    readStream: (streamId, readOptions) => guarded(() => readStream(db, streamId, readOptions)),
    statistics: (filter) => guarded(() => getStatistics(db, filter, now())),
    async ping(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new StoreUnavailableError('The event store did not answer in time')),
          timeoutMs,
        );
      });
      try {
        await Promise.race([guarded(() => db.query('SELECT 1')), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    drain: () => committer.drain(),
  };
}
