/**
 * Declared projections, the service behind the routes: register (validated, 422 naming every
 * problem; a taken name is a 409; announced as `event.projection.created` through the outbox),
 * list, get (with rebuild progress), delete, rebuild, and reads.
 *
 * A read reflects every event acknowledged before it, on any instance, whether or not the
 * projector has caught up: it takes the stream's head, the definition's state row (when it is of
 * the current generation and not ahead of the version asked for), and folds the stream's events
 * after the row's version from the log with the same reducer, in pages of `readPageSize`, so
 * memory stays bounded and the result exact. During a rebuild the rows are of an older generation
 * or missing, and reads fold from the start of the stream.
 *
 * Past states (`as_of_version`, `as_of`) work as for the default projection: from the row when
 * it is at or below the version asked for, else folded from the start of the stream (the cost
 * grows with that version; there are no snapshots of declared projections).
 *
 * A state deleted by a `delete` operation reads as 404, like an entity without events.
 */
import { LifecycleSubject, outboxMessage } from '../bus/envelope.js';
import { ConflictError, NotFoundError, ValidationError, type FieldProblem } from '../domain/errors.js';
import { findUnstorableString } from '../domain/event.js';
import { uuidv7 } from '../domain/ids.js';
import { guarded, sqlState, type Db } from '../store/db.js';
import {
  deleteDefinition,
  getDefinition,
  getDefinitionWithState,
  headPosition,
  insertDefinition,
  listDefinitions,
  rebuildDefinition,
  type DefinitionRow,
  type ProjectionStatus,
} from '../store/projection-definitions.js';
import { readStreamPage } from '../store/projection-log.js';
import { readStreamHead, resolveVersion, type ProjectionTarget } from '../store/projections.js';
import { DEFAULT_PROJECTION } from './default-reducer.js';
import { createReducerCache } from './reducer-cache.js';
import {
  foldEvents,
  handlersProblems,
  initialStateProblems,
  startPoint,
  type FoldPoint,
  type HandlerSpec,
  type State,
} from './reducer-dsl.js';

export interface RegisterInput {
  name: string;
  entity_type: string;
  description?: string | null;
  initial_state?: State;
  handlers: HandlerSpec[];
}

export interface DefinitionView {
  definition_id: string;
  name: string;
  entity_type: string;
  description: string | null;
  initial_state: State;
  handlers: HandlerSpec[];
  generation: number;
  status: ProjectionStatus;
  progress: {
    /** Every event at or below this position is applied. */
    processed_position: number;
    /** Where this generation started following the log, and the newest position then. */
    start_position: number;
    target_position: number;
    /** The newest position now. */
    head_position: number;
    events_applied: number;
    /** Of the rebuild: from start_position to target_position. */
    percent: number;
    started_at: Date;
    finished_at: Date | null;
  };
  created_at: Date;
  updated_at: Date;
}

export interface NamedProjection {
  projection_id: string;
  projection_name: string;
  entity_type: string;
  entity_id: string;
  state: State;
  version: number;
  last_event_id: string;
  created_at: Date;
  updated_at: Date;
  /** Events folded from the log by this read (0 when the state row was current). */
  folded_events: number;
}

export interface DeclaredProjections {
  register(input: RegisterInput): Promise<DefinitionView>;
  list(filter?: { entityType?: string }): Promise<DefinitionView[]>;
  get(name: string): Promise<DefinitionView>;
  remove(name: string): Promise<void>;
  rebuild(name: string): Promise<DefinitionView>;
  read(
    name: string,
    entityType: string,
    entityId: string,
    target: ProjectionTarget,
  ): Promise<NamedProjection>;
}

export interface DeclaredProjectionsDeps {
  db: Db;
  now: () => Date;
  /** Most definitions that may exist (default 200). */
  maxDefinitions?: number;
  /** Events a read folds per query (default 1,000). */
  readPageSize?: number;
}

const notFound = (name: string) => new NotFoundError(`Projection not found: ${name}`);

export function definitionView(row: DefinitionRow, head: number): DefinitionView {
  const span = row.rebuild_target - row.rebuild_from;
  const done = Math.min(row.checkpoint, row.rebuild_target) - row.rebuild_from;
  const percent =
    row.status === 'live' || span <= 0 ? 100 : Math.min(99.9, Math.floor((done / span) * 1000) / 10);
  return {
    definition_id: row.definition_id,
    name: row.name,
    entity_type: row.entity_type,
    description: row.description,
    initial_state: row.initial_state,
    handlers: row.handlers,
    generation: row.generation,
    status: row.status,
    progress: {
      processed_position: row.checkpoint,
      start_position: row.rebuild_from,
      target_position: row.rebuild_target,
      head_position: Math.max(head, row.checkpoint),
      events_applied: row.events_applied,
      percent,
      started_at: row.rebuild_started_at,
      finished_at: row.rebuild_finished_at,
    },
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/** What the schema cannot check: the reserved name, the handlers, the initial state, storable text. */
function registrationProblems(input: RegisterInput): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (input.name === DEFAULT_PROJECTION) {
    problems.push({ path: 'body.name', message: 'is reserved for the built-in default projection' });
  }
  for (const field of ['name', 'entity_type', 'description'] as const) {
    const problem = findUnstorableString(input[field], `body.${field}`);
    if (problem) problems.push(problem);
  }
  problems.push(...handlersProblems(input.handlers));
  if (input.initial_state !== undefined) problems.push(...initialStateProblems(input.initial_state));
  if (problems.length === 0) {
    // Event type patterns are the only strings left unchecked for what jsonb cannot store.
    const problem = findUnstorableString(input.handlers, 'body.handlers');
    if (problem) problems.push(problem);
  }
  return problems;
}

export function createDeclaredProjections(deps: DeclaredProjectionsDeps): DeclaredProjections {
  const { db } = deps;
  const maxDefinitions = deps.maxDefinitions ?? 200;
  const pageSize = deps.readPageSize ?? 1000;
  const reducerOf = createReducerCache();

  /** Folds the stream from `from` up to `version`, a page at a time. */
  async function foldUpTo(
    reducer: ReturnType<typeof reducerOf>,
    streamId: string,
    from: FoldPoint,
    version: number,
  ): Promise<{ point: FoldPoint; folded: number }> {
    let point = from;
    let folded = 0;
    while (point.version < version) {
      const page = await readStreamPage(db, streamId, point.version, version, pageSize);
      if (page.length === 0) {
        throw new Error(`stream ${streamId}: events ${point.version + 1} to ${version} not found`);
      }
      point = foldEvents(reducer, point, page);
      folded += page.length;
    }
    return { point, folded };
  }

  return {
    register: (input) =>
      guarded(async () => {
        const problems = registrationProblems(input);
        if (problems.length > 0) throw new ValidationError(problems);
        const definitionId = `prj_${uuidv7()}`;
        const msgId = `projection-created-${definitionId}`;
        const createdAt = deps.now();
        let row: DefinitionRow | null;
        try {
          row = await insertDefinition(
            db,
            {
              definition_id: definitionId,
              name: input.name,
              entity_type: input.entity_type,
              description: input.description ?? null,
              handlers: input.handlers,
              initial_state: input.initial_state ?? {},
            },
            maxDefinitions,
            outboxMessage(
              msgId,
              LifecycleSubject.PROJECTION_CREATED,
              {
                definition_id: definitionId,
                name: input.name,
                entity_type: input.entity_type,
                description: input.description ?? null,
                event_types: [...new Set(input.handlers.map((handler) => handler.event_type))],
                timestamp: createdAt.toISOString(),
              },
              createdAt,
            ),
          );
        } catch (error) {
          if (sqlState(error) === '23505') {
            throw new ConflictError(`A projection named ${JSON.stringify(input.name)} already exists`, {
              cause: error,
            });
          }
          throw error;
        }
        if (!row) {
          throw new ConflictError(
            `At most ${maxDefinitions} projections can be registered: delete one before adding another`,
          );
        }
        return definitionView(row, row.rebuild_target);
      }),

    list: (filter = {}) =>
      guarded(async () => {
        const rows = await listDefinitions(db, filter.entityType);
        const head = rows.length > 0 ? await headPosition(db) : 0;
        return rows.map((row) => definitionView(row, head));
      }),

    get: (name) =>
      guarded(async () => {
        const row = await getDefinition(db, name);
        if (!row) throw notFound(name);
        return definitionView(row, await headPosition(db));
      }),

    remove: (name) =>
      guarded(async () => {
        if (!(await deleteDefinition(db, name))) throw notFound(name);
      }),

    rebuild: (name) =>
      guarded(async () => {
        const row = await rebuildDefinition(db, name);
        if (!row) throw notFound(name);
        return definitionView(row, await headPosition(db));
      }),

    read: (name, entityType, entityId, target) =>
      guarded(async () => {
        const streamId = `${entityType}:${entityId}`;
        const found = await getDefinitionWithState(db, name, streamId);
        if (!found) throw notFound(name);
        const { definition, state: stored } = found;
        if (definition.entity_type !== entityType) {
          throw new NotFoundError(
            `Projection ${name} is defined for entity type ${definition.entity_type}, not ${entityType}`,
          );
        }
        const stream = await readStreamHead(db, streamId);
        const version = stream ? await resolveVersion(db, stream, target) : null;
        if (!stream || version === null) {
          throw new NotFoundError(`No events for entity ${entityType}/${entityId}`);
        }
        const reducer = reducerOf(definition);
        const current = target.asOfVersion === undefined && target.asOf === undefined;
        const row = stored && stored.generation === definition.generation ? stored : null;
        let point: FoldPoint;
        let folded = 0;
        if (row && (row.version === version || (current && row.version > version))) {
          point = row;
        } else {
          const from = row && row.version < version ? row : startPoint(reducer);
          ({ point, folded } = await foldUpTo(reducer, streamId, from, version));
        }
        if (point.state === null) {
          throw new NotFoundError(
            `Projection ${name} of entity ${entityType}/${entityId} was deleted by event ` +
              `${point.last_event_id} (version ${point.version})`,
          );
        }
        return {
          projection_id: `${name}:${streamId}`,
          projection_name: name,
          entity_type: stream.entity_type,
          entity_id: stream.entity_id,
          state: point.state,
          version: point.version,
          last_event_id: point.last_event_id!,
          created_at: stream.created_at,
          updated_at: point.last_event_at!,
          folded_events: folded,
        };
      }),
  };
}
