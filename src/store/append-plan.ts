/**
 * Pure planning of one group commit: given the units to append, the events already stored under
 * their ids or idempotency keys, and the current stream versions, decide per unit whether it is
 * appended (and with which stream versions), answered from what is stored (an idempotent repeat),
 * or rejected. A unit is all-or-nothing; units are independent of each other.
 */
import { IdempotencyConflictError, VersionConflictError, type DomainError } from '../domain/errors.js';
import type { ExpectedVersion, NewEvent, StoredEvent } from '../domain/event.js';

export interface AppendUnit {
  events: NewEvent[];
}

/** An already stored event as far as deduplication needs it. */
export interface ExistingEvent {
  event: StoredEvent;
  /** Null for an event stored without a client id or idempotency key: it is never the same content. */
  contentHash: string | null;
}

export interface PlannedRow {
  event: NewEvent;
  streamVersion: number | null;
}

/** Per event of a unit: a row to insert, or an event already stored (or planned earlier in the group). */
export type PlannedItem =
  | { type: 'insert'; row: PlannedRow }
  | { type: 'stored'; event: StoredEvent }
  | { type: 'same-as'; row: PlannedRow };

export type UnitPlan = { type: 'append'; items: PlannedItem[] } | { type: 'reject'; error: DomainError };

export interface GroupPlan {
  units: UnitPlan[];
  rows: PlannedRow[];
  /** Final version per stream touched by the rows. */
  streams: Map<string, { version: number; wasEmpty: boolean }>;
}

export function versionMatches(expected: ExpectedVersion, current: number): boolean {
  if (expected === 'any') return true;
  if (expected === 'no_stream') return current === 0;
  if (expected === 'stream_exists') return current > 0;
  return current === expected;
}

export function planGroup(
  units: readonly AppendUnit[],
  existingById: ReadonlyMap<string, ExistingEvent>,
  existingByKey: ReadonlyMap<string, ExistingEvent>,
  streamVersions: ReadonlyMap<string, number>,
): GroupPlan {
  const versions = new Map(streamVersions);
  const plannedById = new Map<string, PlannedRow>();
  const plannedByKey = new Map<string, PlannedRow>();
  const rows: PlannedRow[] = [];
  const plans: UnitPlan[] = [];

  for (const unit of units) {
    const localVersions = new Map<string, number>();
    const localById = new Map<string, PlannedRow>();
    const localByKey = new Map<string, PlannedRow>();
    const items: PlannedItem[] = [];
    let error: DomainError | null = null;

    for (const event of unit.events) {
      const duplicate = findDuplicate(
        event,
        existingById,
        existingByKey,
        [plannedById, localById],
        [plannedByKey, localByKey],
      );
      if (duplicate) {
        if ('error' in duplicate) {
          error = duplicate.error;
          break;
        }
        items.push(duplicate.item);
        continue;
      }
      let streamVersion: number | null = null;
      if (event.stream) {
        const id = event.stream.streamId;
        const current = localVersions.get(id) ?? versions.get(id) ?? 0;
        if (!versionMatches(event.expectedVersion, current)) {
          error = new VersionConflictError(id, event.expectedVersion, current);
          break;
        }
        streamVersion = current + 1;
        localVersions.set(id, streamVersion);
      }
      const row: PlannedRow = { event, streamVersion };
      if (event.clientEventId) localById.set(event.eventId, row);
      if (event.idempotencyKey !== null) localByKey.set(event.idempotencyKey, row);
      items.push({ type: 'insert', row });
    }

    if (error) {
      plans.push({ type: 'reject', error });
      continue;
    }
    for (const [id, version] of localVersions) versions.set(id, version);
    for (const [id, row] of localById) plannedById.set(id, row);
    for (const [key, row] of localByKey) plannedByKey.set(key, row);
    for (const item of items) if (item.type === 'insert') rows.push(item.row);
    plans.push({ type: 'append', items });
  }

  const streams = new Map<string, { version: number; wasEmpty: boolean }>();
  for (const row of rows) {
    if (!row.event.stream || row.streamVersion === null) continue;
    const id = row.event.stream.streamId;
    const before = streams.get(id);
    streams.set(id, {
      version: Math.max(before?.version ?? 0, row.streamVersion),
      wasEmpty: before?.wasEmpty ?? (streamVersions.get(id) ?? 0) === 0,
    });
  }
  return { units: plans, rows, streams };
}

type Duplicate = { item: PlannedItem } | { error: DomainError };

function findDuplicate(
  event: NewEvent,
  existingById: ReadonlyMap<string, ExistingEvent>,
  existingByKey: ReadonlyMap<string, ExistingEvent>,
  plannedById: ReadonlyMap<string, PlannedRow>[],
  plannedByKey: ReadonlyMap<string, PlannedRow>[],
): Duplicate | null {
  const checks: {
    field: 'idempotency_key' | 'event_id';
    value: string | null;
    stored: typeof existingById;
    planned: typeof plannedById;
  }[] = [
    { field: 'idempotency_key', value: event.idempotencyKey, stored: existingByKey, planned: plannedByKey },
    {
      field: 'event_id',
      value: event.clientEventId ? event.eventId : null,
      stored: existingById,
      planned: plannedById,
    },
  ];
  for (const { field, value, stored, planned } of checks) {
    if (value === null) continue;
    const existing = stored.get(value);
    if (existing) {
      return existing.contentHash !== null && existing.contentHash === event.contentHash
        ? { item: { type: 'stored', event: existing.event } }
        : { error: new IdempotencyConflictError(field, value) };
    }
    for (const map of planned) {
      const row = map.get(value);
      if (row) {
        return row.event.contentHash === event.contentHash
          ? { item: { type: 'same-as', row } }
          : { error: new IdempotencyConflictError(field, value) };
      }
    }
  }
  return null;
}
