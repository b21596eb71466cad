/**
 * SQL of projection reads: the stream head and the version asked for (by number or by time), which
 * declared projections use too (projections/declared.ts); for the default projection, the newest
 * snapshot at or below that version, the events after that snapshot, and the snapshots a read
 * passes (written once, idempotently: they are a cache of what the immutable events determine).
 */
import {
  DEFAULT_PROJECTION,
  fold,
  type Folded,
  type FoldedEvent,
  type ProjectionState,
} from '../projections/default-reducer.js';
import type { Queryable } from './db.js';

export interface ProjectionTarget {
  /** The state after this version (capped at the stream's version). */
  asOfVersion?: number;
  /** The state after the newest version whose event `timestamp` is at or before this instant. */
  asOf?: Date;
}

export interface ProjectionRead extends Folded {
  stream_id: string;
  entity_type: string;
  entity_id: string;
  /** When the stream was created. */
  created_at: Date;
  /** How many events the read folded after the snapshot it started from. */
  folded_events: number;
}

export interface StreamHead {
  stream_id: string;
  entity_type: string;
  entity_id: string;
  version: number;
  created_at: Date;
}

/** A stream with events (declared projections read it too); null when it has none. */
export async function readStreamHead(db: Queryable, streamId: string): Promise<StreamHead | null> {
  const head = await db.query<StreamHead>(
    `SELECT stream_id, entity_type, entity_id, version, created_at FROM event.event_streams
     WHERE stream_id = $1 AND version > 0`,
    [streamId],
  );
  return head.rows[0] ?? null;
}

/** The version a target names (capped at the stream's); null when no event is that old. */
export async function resolveVersion(
  db: Queryable,
  stream: StreamHead,
  target: ProjectionTarget,
): Promise<number | null> {
  const version = Math.min(stream.version, target.asOfVersion ?? stream.version);
  if (target.asOf === undefined) return version;
  const at = await db.query<{ version: number | null }>(
    `SELECT max(stream_version) AS version FROM event.events
     WHERE stream_id = $1 AND "timestamp" <= $2::timestamptz AND stream_version <= $3`,
    [stream.stream_id, target.asOf.toISOString(), version],
  );
  return at.rows[0]?.version ?? null;
}

/** The default projection of one stream at a version; null when there are no events at all by then. */
export async function readDefaultProjection(
  db: Queryable,
  streamId: string,
  target: ProjectionTarget,
  snapshotEvery: number,
): Promise<ProjectionRead | null> {
  const stream = await readStreamHead(db, streamId);
  if (!stream) return null;
  const version = await resolveVersion(db, stream, target);
  if (version === null) return null;

  const snapshot = await db.query<{
    version: number;
    state: ProjectionState;
    last_event_id: string;
    last_event_at: Date;
  }>(
    `SELECT version, state, last_event_id, last_event_at FROM event.projection_snapshots
     WHERE stream_id = $1 AND projection_name = $2 AND version <= $3
     ORDER BY version DESC LIMIT 1`,
    [streamId, DEFAULT_PROJECTION, version],
  );
  const start: Folded = snapshot.rows[0] ?? {
    state: {},
    version: 0,
    last_event_id: null,
    last_event_at: null,
  };
  const events = await db.query<FoldedEvent>(
    `SELECT event_id, event_type, data, stream_version, created_at FROM event.events
     WHERE stream_id = $1 AND stream_version > $2 AND stream_version <= $3
     ORDER BY stream_version`,
    [streamId, start.version, version],
  );
  const boundaries: Folded[] = [];
  const folded = fold(start, events.rows, snapshotEvery, (at) => boundaries.push(at));
  if (boundaries.length > 0) await saveSnapshots(db, streamId, boundaries);
  return {
    ...folded,
    stream_id: stream.stream_id,
    entity_type: stream.entity_type,
    entity_id: stream.entity_id,
    created_at: stream.created_at,
    folded_events: events.rows.length,
  };
}

async function saveSnapshots(db: Queryable, streamId: string, snapshots: Folded[]): Promise<void> {
  await db.query(
    `INSERT INTO event.projection_snapshots (stream_id, projection_name, version, state, last_event_id, last_event_at)
     SELECT $1, $2, s.version, s.state, s.last_event_id, s.last_event_at
     FROM jsonb_to_recordset($3::jsonb) AS s(version int, state jsonb, last_event_id text, last_event_at timestamptz)
     ON CONFLICT DO NOTHING`,
    [streamId, DEFAULT_PROJECTION, JSON.stringify(snapshots)],
  );
}
