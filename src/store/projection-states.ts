/**
 * SQL of the state rows of declared projections: one per definition and stream, at a stream
 * version, tagged with the definition's generation (rows of an older one are recomputed by the
 * rebuild, never read). Written only by the projector, in the transaction that moves the
 * definition's checkpoint.
 */
import type { State } from '../projections/reducer-dsl.js';
import type { Queryable } from './db.js';

export interface StateRow {
  stream_id: string;
  generation: number;
  version: number;
  /** Null: deleted by a `delete` operation. */
  state: State | null;
  last_event_id: string;
  last_event_at: Date;
}

export interface StateWrite extends Omit<StateRow, 'generation'> {
  entity_type: string;
  entity_id: string;
}

export const STATE_COLUMNS = 'stream_id, generation, version, state, last_event_id, last_event_at';

/** The rows of these streams, by stream id. */
export async function loadStates(
  db: Queryable,
  name: string,
  streamIds: readonly string[],
): Promise<Map<string, StateRow>> {
  const result = await db.query<StateRow>(
    `SELECT ${STATE_COLUMNS} FROM event.projection_states
     WHERE projection_name = $1 AND stream_id = ANY($2::text[])`,
    [name, streamIds],
  );
  return new Map(result.rows.map((row) => [row.stream_id, row]));
}

/**
 * Writes states of one generation. A row only moves forward (a newer generation, or a higher
 * version of the same one); a write that would not throws, rolling the caller's batch back.
 */
export async function writeStates(
  tx: Queryable,
  name: string,
  generation: number,
  writes: readonly StateWrite[],
): Promise<void> {
  if (writes.length === 0) return;
  const result = await tx.query(
    `INSERT INTO event.projection_states AS p
       (projection_name, stream_id, entity_type, entity_id, generation, version, state, last_event_id,
        last_event_at, updated_at)
     SELECT $1, w.stream_id, w.entity_type, w.entity_id, $2, w.version, w.state, w.last_event_id,
            w.last_event_at, now()
     FROM jsonb_to_recordset($3::jsonb) AS w(stream_id text, entity_type text, entity_id text, version int,
       state jsonb, last_event_id text, last_event_at timestamptz)
     ON CONFLICT (projection_name, stream_id) DO UPDATE
     SET generation = EXCLUDED.generation, version = EXCLUDED.version, state = EXCLUDED.state,
         last_event_id = EXCLUDED.last_event_id, last_event_at = EXCLUDED.last_event_at, updated_at = now()
     WHERE p.generation < EXCLUDED.generation
        OR (p.generation = EXCLUDED.generation AND p.version < EXCLUDED.version)`,
    [name, generation, JSON.stringify(writes)],
  );
  if (result.rowCount !== writes.length) {
    throw new Error(
      `projection ${name}: ${writes.length - result.rowCount} state rows were already ahead of this batch`,
    );
  }
}
