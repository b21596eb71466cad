/**
 * SQL of the log reads declared projections fold: the projector's window of the global log, and a
 * page of one stream (reads fold the events after a state row's version).
 *
 * The projector follows `event.events` by position with the gap-free technique of
 * store/follower.ts (writers draw positions under the position-order lock, so a visible position p
 * means every lower position is visible or rolled back for good). It does not call `readNext`,
 * which returns every event with every column: a definition needs only the events of its entity
 * type, and most of the log may be other types. So a window is read in two steps: the newest
 * position among the next `span` positions after the checkpoint (a visible position: everything
 * at or below it is final), then the events of the entity type up to it. The checkpoint moves to
 * the end of the window whether or not it held such events.
 */
import type { ProjectionEvent } from '../projections/reducer-dsl.js';
import type { Queryable } from './db.js';

/** The immutable fields a reducer may read (never the processing fields: they change later). */
const PROJECTION_EVENT_COLUMNS = `position, event_id, event_type, event_source, event_category, user_id,
  session_id, organization_id, device_id, correlation_id, data, metadata, context, properties,
  "timestamp", created_at, stream_id, entity_type, entity_id, stream_version`;

export interface LogWindow {
  /** Every position at or below it has been read; null when nothing follows the checkpoint. */
  upto: number | null;
  /** The events of the entity type in the window, in position order. */
  events: ProjectionEvent[];
}

/** The next window of at most `span` positions after `checkpoint`, keeping the entity type's events. */
export async function readLogWindow(
  db: Queryable,
  checkpoint: number,
  entityType: string,
  span: number,
): Promise<LogWindow> {
  const end = await db.query<{ upto: number | null }>(
    `SELECT max(position) AS upto FROM
       (SELECT position FROM event.events WHERE position > $1 ORDER BY position LIMIT $2) AS w`,
    [checkpoint, span],
  );
  const upto = end.rows[0]?.upto ?? null;
  if (upto === null) return { upto: null, events: [] };
  const events = await db.query<ProjectionEvent>(
    `SELECT ${PROJECTION_EVENT_COLUMNS} FROM event.events
     WHERE position > $1 AND position <= $2 AND entity_type = $3 ORDER BY position`,
    [checkpoint, upto, entityType],
  );
  return { upto, events: events.rows };
}

/** At most `limit` events of a stream after version `after` and up to `upto`, in version order. */
export async function readStreamPage(
  db: Queryable,
  streamId: string,
  after: number,
  upto: number,
  limit: number,
): Promise<ProjectionEvent[]> {
  const result = await db.query<ProjectionEvent>(
    `SELECT ${PROJECTION_EVENT_COLUMNS} FROM event.events
     WHERE stream_id = $1 AND stream_version > $2 AND stream_version <= $3
     ORDER BY stream_version LIMIT $4`,
    [streamId, after, upto, limit],
  );
  return result.rows;
}
