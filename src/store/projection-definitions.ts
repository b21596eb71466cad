/**
 * SQL of declared projection definitions: register (announced through the outbox in the same
 * transaction), list, get, delete (its state rows go with it), rebuild, and the projector's
 * per-definition checkpoint.
 *
 * Where a generation starts following the log (`startPosition`): just before the first event of
 * the entity type (from `event_streams.first_position`), or, when the type has no event yet, at
 * the newest position read while holding the position-order lock (store/follower.ts): no event
 * can then commit later with a position at or below it. A position read without the lock would
 * not do for that case, but does for the first: an event committed after the read has a position
 * above every position visible to it (follower.ts), so above the first position found.
 */
import type { HandlerSpec, State } from '../projections/reducer-dsl.js';
import type { Queryable, Db } from './db.js';
import { EVENTS_SOURCE, lockPositionOrder } from './follower.js';
import { enqueueOutbox, type OutboxMessage } from './outbox.js';
import { STATE_COLUMNS, type StateRow } from './projection-states.js';

export const ProjectionStatus = { REBUILDING: 'rebuilding', LIVE: 'live' } as const;
export type ProjectionStatus = (typeof ProjectionStatus)[keyof typeof ProjectionStatus];

/** What the projector needs of a definition on each pass (its handlers are fetched once). */
export interface DefinitionHead {
  definition_id: string;
  name: string;
  entity_type: string;
  generation: number;
  status: ProjectionStatus;
  checkpoint: number;
  rebuild_target: number;
}

export interface DefinitionRow extends DefinitionHead {
  description: string | null;
  handlers: HandlerSpec[];
  initial_state: State;
  rebuild_from: number;
  events_applied: number;
  rebuild_started_at: Date;
  rebuild_finished_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface NewDefinition {
  definition_id: string;
  name: string;
  entity_type: string;
  description: string | null;
  handlers: HandlerSpec[];
  initial_state: State;
}

const HEAD_COLUMNS = 'definition_id, name, entity_type, generation, status, checkpoint, rebuild_target';
const DEFINITION_COLUMNS = `${HEAD_COLUMNS}, description, handlers, initial_state, rebuild_from,
  events_applied, rebuild_started_at, rebuild_finished_at, created_at, updated_at`;

/**
 * Where a new generation over `entityType` starts following the log (see the module header) and
 * the newest position, in the caller's transaction; takes the position-order lock.
 */
async function startPosition(tx: Queryable, entityType: string): Promise<{ from: number; target: number }> {
  const firstSql = `SELECT min(first_position) AS first FROM event.event_streams
                    WHERE entity_type = $1 AND version > 0`;
  let first = (await tx.query<{ first: number | null }>(firstSql, [entityType])).rows[0]?.first ?? null;
  await lockPositionOrder(tx, EVENTS_SOURCE);
  const head = await tx.query<{ head: number }>(
    'SELECT coalesce(max(position), 0) AS head FROM event.events',
  );
  const target = head.rows[0]?.head ?? 0;
  // Streams of the type may have appeared since: under the lock the answer is final.
  if (first === null)
    first = (await tx.query<{ first: number | null }>(firstSql, [entityType])).rows[0]?.first ?? null;
  return first === null ? { from: target, target } : { from: first - 1, target };
}

/**
 * Inserts a definition that starts following the log where its entity type's events begin, with
 * its announcement. Null when `maxDefinitions` exist already; a taken name throws 23505.
 */
export async function insertDefinition(
  db: Db,
  definition: NewDefinition,
  maxDefinitions: number,
  announcement: OutboxMessage,
): Promise<DefinitionRow | null> {
  return db.transaction(async (tx) => {
    const inserted = await tx.query(
      `INSERT INTO event.projection_definitions
         (definition_id, name, entity_type, description, handlers, initial_state, status)
       SELECT $1, $2, $3, $4, $5::jsonb, $6::jsonb, 'rebuilding'
       WHERE (SELECT count(*) FROM event.projection_definitions) < $7`,
      [
        definition.definition_id,
        definition.name,
        definition.entity_type,
        definition.description,
        JSON.stringify(definition.handlers),
        JSON.stringify(definition.initial_state),
        maxDefinitions,
      ],
    );
    if (inserted.rowCount === 0) return null;
    await enqueueOutbox(tx, [announcement]);
    return startGeneration(tx, definition.definition_id, definition.entity_type);
  });
}

/** Points a definition's current generation at the log (position lock held to the commit). */
async function startGeneration(
  tx: Queryable,
  definitionId: string,
  entityType: string,
): Promise<DefinitionRow> {
  const { from, target } = await startPosition(tx, entityType);
  const result = await tx.query<DefinitionRow>(
    `UPDATE event.projection_definitions
     SET checkpoint = $2::bigint, rebuild_from = $2::bigint, rebuild_target = $3::bigint, events_applied = 0,
         status = CASE WHEN $2::bigint >= $3::bigint THEN 'live' ELSE 'rebuilding' END,
         rebuild_started_at = now(),
         rebuild_finished_at = CASE WHEN $2::bigint >= $3::bigint THEN now() END,
         updated_at = now()
     WHERE definition_id = $1 RETURNING ${DEFINITION_COLUMNS}`,
    [definitionId, from, target],
  );
  return result.rows[0]!;
}

export async function listDefinitions(db: Queryable, entityType?: string): Promise<DefinitionRow[]> {
  const result = await db.query<DefinitionRow>(
    `SELECT ${DEFINITION_COLUMNS} FROM event.projection_definitions
     WHERE $1::text IS NULL OR entity_type = $1 ORDER BY name`,
    [entityType ?? null],
  );
  return result.rows;
}

export async function getDefinition(db: Queryable, name: string): Promise<DefinitionRow | null> {
  const result = await db.query<DefinitionRow>(
    `SELECT ${DEFINITION_COLUMNS} FROM event.projection_definitions WHERE name = $1`,
    [name],
  );
  return result.rows[0] ?? null;
}

/**
 * A definition and its state row for one stream, read in one statement (one snapshot: the row is
 * never one of another definition that took the name meanwhile). Null when there is no definition.
 */
export async function getDefinitionWithState(
  db: Queryable,
  name: string,
  streamId: string,
): Promise<{ definition: DefinitionRow; state: StateRow | null } | null> {
  const result = await db.query<DefinitionRow & { state_row: (StateRow & { last_event_at: string }) | null }>(
    `SELECT ${DEFINITION_COLUMNS},
       (SELECT to_jsonb(s) FROM (SELECT ${STATE_COLUMNS} FROM event.projection_states
                                 WHERE projection_name = $1 AND stream_id = $2) AS s) AS state_row
     FROM event.projection_definitions WHERE name = $1`,
    [name, streamId],
  );
  const row = result.rows[0];
  if (!row) return null;
  const { state_row: stateRow, ...definition } = row;
  return {
    definition,
    state: stateRow ? { ...stateRow, last_event_at: new Date(stateRow.last_event_at) } : null,
  };
}

/** Deletes a definition and (cascading) its state rows; false when there was none. */
export async function deleteDefinition(db: Queryable, name: string): Promise<boolean> {
  const result = await db.query('DELETE FROM event.projection_definitions WHERE name = $1', [name]);
  return result.rowCount > 0;
}

/**
 * Starts a new generation that recomputes every state from the log; a rebuild in progress goes on
 * as it is. Null when there is no such definition.
 */
export async function rebuildDefinition(db: Db, name: string): Promise<DefinitionRow | null> {
  return db.transaction(async (tx) => {
    const current = await tx.query<{ definition_id: string; entity_type: string; status: ProjectionStatus }>(
      `SELECT definition_id, entity_type, status FROM event.projection_definitions WHERE name = $1 FOR UPDATE`,
      [name],
    );
    const row = current.rows[0];
    if (!row) return null;
    if (row.status === ProjectionStatus.REBUILDING) return getDefinition(tx, name);
    await tx.query(
      'UPDATE event.projection_definitions SET generation = generation + 1 WHERE definition_id = $1',
      [row.definition_id],
    );
    return startGeneration(tx, row.definition_id, row.entity_type);
  });
}

/** The newest stored position (progress reports compare checkpoints with it). */
export async function headPosition(db: Queryable): Promise<number> {
  const result = await db.query<{ head: number }>(
    'SELECT coalesce(max(position), 0) AS head FROM event.events',
  );
  return result.rows[0]?.head ?? 0;
}

// ---------------------------------------------------------------- the projector's side

export async function listDefinitionHeads(db: Queryable): Promise<DefinitionHead[]> {
  const result = await db.query<DefinitionHead>(
    `SELECT ${HEAD_COLUMNS} FROM event.projection_definitions ORDER BY name`,
  );
  return result.rows;
}

export async function getDefinitionById(db: Queryable, definitionId: string): Promise<DefinitionRow | null> {
  const result = await db.query<DefinitionRow>(
    `SELECT ${DEFINITION_COLUMNS} FROM event.projection_definitions WHERE definition_id = $1`,
    [definitionId],
  );
  return result.rows[0] ?? null;
}

/**
 * Locks a definition's row for the caller's batch transaction (a rebuild or a delete waits for
 * the batch, and the batch sees theirs): its generation and checkpoint now, or null when gone.
 */
export async function lockDefinition(
  tx: Queryable,
  definitionId: string,
): Promise<Pick<DefinitionHead, 'generation' | 'checkpoint'> | null> {
  const result = await tx.query<Pick<DefinitionHead, 'generation' | 'checkpoint'>>(
    `SELECT generation, checkpoint FROM event.projection_definitions WHERE definition_id = $1 FOR UPDATE`,
    [definitionId],
  );
  return result.rows[0] ?? null;
}

/** Moves the checkpoint of a locked definition; live once it reaches the rebuild's target. */
export async function advanceDefinition(
  tx: Queryable,
  definitionId: string,
  checkpoint: number,
  applied: number,
): Promise<void> {
  await tx.query(
    `UPDATE event.projection_definitions
     SET checkpoint = $2::bigint, events_applied = events_applied + $3::bigint, updated_at = now(),
         rebuild_finished_at = CASE WHEN status = 'rebuilding' AND $2::bigint >= rebuild_target THEN now()
                                    ELSE rebuild_finished_at END,
         status = CASE WHEN $2::bigint >= rebuild_target THEN 'live' ELSE status END
     WHERE definition_id = $1`,
    [definitionId, checkpoint, applied],
  );
}
