/**
 * Declared projections, the reducer language. Pure: validation of a definition (every problem as
 * `{path, message}`), compilation into a reducer, and the fold of a stream's events.
 *
 * A definition lists handlers; each names an event type (exact, or a NATS-style pattern: `*` one
 * token, `>` the rest) and the operations to run on the state when an event of that type comes.
 * Every handler that matches runs, in the order listed. Operations:
 *
 * - `set`: `path` ← `from` (a field of the event) or `value` (a literal); `default` when `from`
 *   is absent from the event.
 * - `merge`: the object at `from` (default `data`) merged key by key (shallow) into the object at
 *   `path` (default: the whole state).
 * - `increment`: the number at `path` (0 when it is not a number) plus `by` (default 1) or the
 *   number at `from`.
 * - `append`: `from` or `value` appended to the list at `path` (a new list when it is not one),
 *   keeping the newest `max_length` items (default 1,000).
 * - `remove`: the key at `path`.
 * - `delete`: the whole state. Nothing after it applies for that event; the projection of the
 *   entity then reads as deleted (404) until a later event's handler runs again, from the initial
 *   state.
 *
 * An operation whose `from` is absent from the event (or is not of the kind it needs: an object
 * for `merge`, a number for `increment`) changes nothing. Paths are dot paths into the state's
 * objects; a missing or non-object step on the way is replaced by an object. Sources are event
 * fields: `data`, `metadata`, `context`, `properties` (and dot paths into them; a digit segment
 * indexes a list), and the immutable scalar fields (`event_id`, `event_type`, `user_id`,
 * `timestamp` as an ISO string, `stream_version`, ...). Processing fields (`status`, ...) are not
 * sources: they change after the event is stored, and a rebuild must compute what the live
 * projection computed.
 *
 * The state stays plain JSON at every step (so a state read back from the database continues
 * exactly like the one in memory): values are copied in, a sum that would not be a finite number
 * is not applied, keys such as `__proto__` coming from event data are stored as plain keys.
 */
import type { FieldProblem } from '../domain/errors.js';
import { findUnstorableString, type StoredEvent } from '../domain/event.js';
import { matchesPattern } from '../domain/subjects.js';
import { patternProblem } from '../processing/filters.js';

export type State = Record<string, unknown>;

/**
 * The event fields a reducer sees: the immutable fields of an event of a stream (never the
 * processing ones, which change later).
 */
export type ProjectionEvent = Pick<
  StoredEvent,
  | 'position'
  | 'event_id'
  | 'event_type'
  | 'event_source'
  | 'event_category'
  | 'user_id'
  | 'session_id'
  | 'organization_id'
  | 'device_id'
  | 'correlation_id'
  | 'data'
  | 'metadata'
  | 'context'
  | 'properties'
  | 'timestamp'
  | 'created_at'
> & { stream_id: string; entity_type: string; entity_id: string; stream_version: number };

export const OPERATIONS = ['set', 'merge', 'increment', 'append', 'remove', 'delete'] as const;
export type OperationName = (typeof OPERATIONS)[number];

export interface OperationSpec {
  op: OperationName;
  path?: string;
  from?: string;
  value?: unknown;
  default?: unknown;
  by?: number;
  max_length?: number;
}

export interface HandlerSpec {
  event_type: string;
  operations: OperationSpec[];
}

export const DSL_LIMITS = {
  handlers: 100,
  operations: 50,
  pathLength: 200,
  pathSegments: 10,
  listLength: 10_000,
  defaultListLength: 1_000,
  /** JSON characters of a literal `value` or `default`. */
  literalChars: 16_384,
  /** JSON characters of the initial state. */
  initialStateChars: 65_536,
  eventTypeLength: 255,
} as const;

/** Fields of the event whose value is an object (dot paths may go into them). */
const OBJECT_FIELDS = ['data', 'metadata', 'context', 'properties'] as const;
/** Immutable scalar fields of the event. */
const SCALAR_FIELDS = [
  'event_id',
  'event_type',
  'event_source',
  'event_category',
  'user_id',
  'session_id',
  'organization_id',
  'device_id',
  'correlation_id',
  'timestamp',
  'created_at',
  'stream_id',
  'entity_type',
  'entity_id',
  'stream_version',
  'position',
] as const;
const SOURCE_HEADS: readonly string[] = [...OBJECT_FIELDS, ...SCALAR_FIELDS];

const FORBIDDEN_SEGMENTS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

const FIELDS: Record<OperationName, readonly string[]> = {
  set: ['op', 'path', 'from', 'value', 'default'],
  merge: ['op', 'path', 'from'],
  increment: ['op', 'path', 'by', 'from'],
  append: ['op', 'path', 'from', 'value', 'max_length'],
  remove: ['op', 'path'],
  delete: ['op'],
};

// ---------------------------------------------------------------- validation

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

const has = (object: Record<string, unknown>, key: string): boolean => Object.hasOwn(object, key);

/** The problem of a dot path, or null. */
export function pathProblem(path: unknown): string | null {
  if (typeof path !== 'string') return 'must be a string';
  if (path === '') return 'must not be empty';
  if (path.length > DSL_LIMITS.pathLength) return `must be at most ${DSL_LIMITS.pathLength} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path) || !path.isWellFormed()) {
    return 'must not contain control characters or unpaired surrogates';
  }
  const segments = path.split('.');
  if (segments.some((segment) => segment === '')) {
    return 'must be names separated by single dots (no empty segment, no leading or trailing dot)';
  }
  if (segments.length > DSL_LIMITS.pathSegments) {
    return `must have at most ${DSL_LIMITS.pathSegments} segments`;
  }
  const forbidden = segments.find((segment) => FORBIDDEN_SEGMENTS.has(segment));
  if (forbidden !== undefined) return `must not contain the segment ${forbidden}`;
  return null;
}

/** The problem of a `from` source, or null; `needsObject` for `merge`. */
function sourceProblem(from: unknown, needsObject: boolean): string | null {
  const problem = pathProblem(from);
  if (problem) return problem;
  const [head, ...rest] = (from as string).split('.');
  if (!SOURCE_HEADS.includes(head!)) {
    return `must start with an event field: ${SOURCE_HEADS.join(', ')}`;
  }
  if (rest.length > 0 && !(OBJECT_FIELDS as readonly string[]).includes(head!)) {
    return `${head} is not an object: only ${OBJECT_FIELDS.join(', ')} have fields`;
  }
  if (needsObject && !(OBJECT_FIELDS as readonly string[]).includes(head!)) {
    return `must name an object: ${OBJECT_FIELDS.join(', ')} or a field inside them`;
  }
  return null;
}

function literalProblem(value: unknown, path: string): FieldProblem | null {
  const text = JSON.stringify(value);
  if (text === undefined) return { path, message: 'must be a JSON value' };
  if (text.length > DSL_LIMITS.literalChars) {
    return { path, message: `must be at most ${DSL_LIMITS.literalChars} characters of JSON` };
  }
  return findUnstorableString(value, path);
}

function operationProblems(operation: unknown, at: string): FieldProblem[] {
  if (!isObject(operation)) return [{ path: at, message: 'must be an object' }];
  const name = operation.op;
  if (typeof name !== 'string' || !(OPERATIONS as readonly string[]).includes(name)) {
    return [{ path: `${at}.op`, message: `must be one of: ${OPERATIONS.join(', ')}` }];
  }
  const op = name as OperationName;
  const problems: FieldProblem[] = [];
  const add = (field: string, message: string) =>
    problems.push({ path: field === '' ? at : `${at}.${field}`, message });
  for (const key of Object.keys(operation)) {
    if (!FIELDS[op].includes(key)) {
      add(key, `is not a field of \`${op}\` (its fields: ${FIELDS[op].join(', ')})`);
    }
  }
  const checkPath = (required: boolean) => {
    if (!has(operation, 'path')) {
      if (required) add('path', `is required for \`${op}\``);
      return;
    }
    const problem = pathProblem(operation.path);
    if (problem) add('path', problem);
  };
  const checkFrom = (needsObject: boolean) => {
    if (!has(operation, 'from')) return;
    const problem = sourceProblem(operation.from, needsObject);
    if (problem) add('from', problem);
  };
  const checkLiteral = (field: 'value' | 'default') => {
    if (!has(operation, field)) return;
    const problem = literalProblem(operation[field], `${at}.${field}`);
    if (problem) problems.push(problem);
  };
  const exactlyOneSource = () => {
    const from = has(operation, 'from');
    const value = has(operation, 'value');
    if (from && value) add('value', 'must not be given together with `from`');
    if (!from && !value) add('', `\`${op}\` needs \`from\` (a field of the event) or \`value\` (a literal)`);
  };

  switch (op) {
    case 'set':
      checkPath(true);
      checkFrom(false);
      checkLiteral('value');
      checkLiteral('default');
      exactlyOneSource();
      if (has(operation, 'default') && !has(operation, 'from')) {
        add('default', 'is only used with `from` (the value when the event lacks it)');
      }
      break;
    case 'merge':
      checkPath(false);
      checkFrom(true);
      break;
    case 'increment':
      checkPath(true);
      checkFrom(false);
      if (has(operation, 'by')) {
        if (typeof operation.by !== 'number' || !Number.isFinite(operation.by)) {
          add('by', 'must be a number');
        } else if (has(operation, 'from')) add('by', 'must not be given together with `from`');
      }
      break;
    case 'append':
      checkPath(true);
      checkFrom(false);
      checkLiteral('value');
      exactlyOneSource();
      if (has(operation, 'max_length')) {
        const max = operation.max_length;
        if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > DSL_LIMITS.listLength) {
          add('max_length', `must be a whole number from 1 to ${DSL_LIMITS.listLength}`);
        }
      }
      break;
    case 'remove':
      checkPath(true);
      break;
    case 'delete':
      break;
  }
  return problems;
}

/** Every problem of a list of handlers, with paths under `prefix` (e.g. `body.handlers`). */
export function handlersProblems(handlers: unknown, prefix = 'body.handlers'): FieldProblem[] {
  if (!Array.isArray(handlers)) return [{ path: prefix, message: 'must be an array' }];
  if (handlers.length === 0) return [{ path: prefix, message: 'must have at least one handler' }];
  if (handlers.length > DSL_LIMITS.handlers) {
    return [{ path: prefix, message: `must have at most ${DSL_LIMITS.handlers} handlers` }];
  }
  const problems: FieldProblem[] = [];
  handlers.forEach((handler: unknown, index) => {
    const at = `${prefix}[${index}]`;
    if (!isObject(handler)) {
      problems.push({ path: at, message: 'must be an object' });
      return;
    }
    for (const key of Object.keys(handler)) {
      if (key !== 'event_type' && key !== 'operations') {
        problems.push({
          path: `${at}.${key}`,
          message: 'is not a field of a handler (event_type, operations)',
        });
      }
    }
    const type = handler.event_type;
    if (typeof type !== 'string') {
      problems.push({ path: `${at}.event_type`, message: 'must be a string' });
    } else {
      const problem =
        type.length > DSL_LIMITS.eventTypeLength
          ? `must be at most ${DSL_LIMITS.eventTypeLength} characters`
          : patternProblem(type);
      if (problem) problems.push({ path: `${at}.event_type`, message: problem });
    }
    const operations = handler.operations;
    if (!Array.isArray(operations)) {
      problems.push({ path: `${at}.operations`, message: 'must be an array' });
      return;
    }
    if (operations.length === 0 || operations.length > DSL_LIMITS.operations) {
      problems.push({
        path: `${at}.operations`,
        message: `must have from 1 to ${DSL_LIMITS.operations} operations`,
      });
      return;
    }
    operations.forEach((operation: unknown, i) => {
      const opAt = `${at}.operations[${i}]`;
      problems.push(...operationProblems(operation, opAt));
      if (isObject(operation) && operation.op === 'delete' && i < operations.length - 1) {
        problems.push({
          path: opAt,
          message: '`delete` must be the last operation of its handler (nothing after it would run)',
        });
      }
    });
  });
  return problems;
}

/** The problems of an initial state (an object of bounded size), paths under `prefix`. */
export function initialStateProblems(value: unknown, prefix = 'body.initial_state'): FieldProblem[] {
  if (!isObject(value)) return [{ path: prefix, message: 'must be an object' }];
  const text = JSON.stringify(value);
  if (text.length > DSL_LIMITS.initialStateChars) {
    return [{ path: prefix, message: `must be at most ${DSL_LIMITS.initialStateChars} characters of JSON` }];
  }
  const unstorable = findUnstorableString(value, prefix);
  return unstorable ? [unstorable] : [];
}

// ---------------------------------------------------------------- JSON helpers

/** Sets an own property, also for keys such as `__proto__` that plain assignment would not store. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

/** A deep copy of a JSON value. */
export function copyJson<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item: unknown) => copyJson(item)) as T;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) setOwn(out, key, copyJson((value as Record<string, unknown>)[key]));
  return out as T;
}

/** The value at `segments` inside a JSON value: own keys of objects, digit indexes of lists. */
function dig(value: unknown, segments: readonly string[]): unknown {
  let node = value;
  for (const segment of segments) {
    if (Array.isArray(node)) {
      if (!/^\d+$/.test(segment)) return undefined;
      node = node[Number(segment)];
    } else if (isObject(node)) {
      node = has(node, segment) ? node[segment] : undefined;
    } else {
      return undefined;
    }
  }
  return node;
}

/** The object at `segments` (the state itself for none), made an object where it is not one. */
function objectAt(state: State, segments: readonly string[]): Record<string, unknown> {
  let node: Record<string, unknown> = state;
  for (const segment of segments) {
    const child = has(node, segment) ? node[segment] : undefined;
    if (isObject(child)) {
      node = child;
    } else {
      const created: Record<string, unknown> = {};
      setOwn(node, segment, created);
      node = created;
    }
  }
  return node;
}

// ---------------------------------------------------------------- compilation

type Read = (event: ProjectionEvent) => unknown;

type Step =
  | { op: 'set'; parent: string[]; key: string; read: Read; fallback: { value: unknown } | null }
  | { op: 'merge'; target: string[]; read: Read }
  | { op: 'increment'; parent: string[]; key: string; read: Read }
  | { op: 'append'; parent: string[]; key: string; read: Read; maxLength: number }
  | { op: 'remove'; parent: string[]; key: string }
  | { op: 'delete' };

interface CompiledHandler {
  pattern: string;
  steps: Step[];
}

function compileSource(from: string): Read {
  const [head, ...rest] = from.split('.') as [string, ...string[]];
  if (head === 'timestamp' || head === 'created_at') return (event) => event[head].toISOString();
  if ((OBJECT_FIELDS as readonly string[]).includes(head)) {
    const field = head as (typeof OBJECT_FIELDS)[number];
    return rest.length === 0 ? (event) => event[field] : (event) => dig(event[field], rest);
  }
  const field = head as Exclude<(typeof SCALAR_FIELDS)[number], 'timestamp' | 'created_at'>;
  return (event) => event[field];
}

function literal(value: unknown): Read {
  return () => value;
}

function split(path: string): { parent: string[]; key: string } {
  const segments = path.split('.');
  const key = segments.pop()!;
  return { parent: segments, key };
}

function compileOperation(spec: OperationSpec): Step {
  switch (spec.op) {
    case 'set':
      return {
        op: 'set',
        ...split(spec.path!),
        read: spec.from !== undefined ? compileSource(spec.from) : literal(spec.value),
        fallback: spec.from !== undefined && Object.hasOwn(spec, 'default') ? { value: spec.default } : null,
      };
    case 'merge':
      return {
        op: 'merge',
        target: spec.path === undefined ? [] : spec.path.split('.'),
        read: compileSource(spec.from ?? 'data'),
      };
    case 'increment':
      return {
        op: 'increment',
        ...split(spec.path!),
        read: spec.from !== undefined ? compileSource(spec.from) : literal(spec.by ?? 1),
      };
    case 'append':
      return {
        op: 'append',
        ...split(spec.path!),
        read: spec.from !== undefined ? compileSource(spec.from) : literal(spec.value),
        maxLength: spec.max_length ?? DSL_LIMITS.defaultListLength,
      };
    case 'remove':
      return { op: 'remove', ...split(spec.path!) };
    case 'delete':
      return { op: 'delete' };
  }
}

/** Runs one step on a state it may change in place. */
function run(step: Exclude<Step, { op: 'delete' }>, state: State, event: ProjectionEvent): void {
  switch (step.op) {
    case 'set': {
      let value = step.read(event);
      if (value === undefined) {
        if (!step.fallback) return;
        value = step.fallback.value;
      }
      setOwn(objectAt(state, step.parent), step.key, copyJson(value));
      return;
    }
    case 'merge': {
      const source = step.read(event);
      if (!isObject(source)) return;
      const target = objectAt(state, step.target);
      for (const key of Object.keys(source)) setOwn(target, key, copyJson(source[key]));
      return;
    }
    case 'increment': {
      const by = step.read(event);
      if (typeof by !== 'number' || !Number.isFinite(by)) return;
      const parent = objectAt(state, step.parent);
      const current = has(parent, step.key) ? parent[step.key] : undefined;
      const sum = (typeof current === 'number' ? current : 0) + by;
      if (Number.isFinite(sum)) setOwn(parent, step.key, sum);
      return;
    }
    case 'append': {
      const item = step.read(event);
      if (item === undefined) return;
      const parent = objectAt(state, step.parent);
      const current = has(parent, step.key) ? parent[step.key] : undefined;
      const list = Array.isArray(current) ? (current as unknown[]) : [];
      list.push(copyJson(item));
      if (list.length > step.maxLength) list.splice(0, list.length - step.maxLength);
      if (list !== current) setOwn(parent, step.key, list);
      return;
    }
    case 'remove': {
      const parent = dig(state, step.parent);
      if (isObject(parent) && has(parent, step.key)) delete parent[step.key];
      return;
    }
  }
}

export interface Reducer {
  /** A fresh copy of the initial state. */
  initial(): State;
  /**
   * The state after `event`. `state` is changed in place (pass a copy you own); null means
   * deleted, and so may the answer be.
   */
  apply(state: State | null, event: ProjectionEvent): State | null;
}

/** Compiles valid handlers (checked again here: a bad definition throws). */
export function compileReducer(handlers: readonly HandlerSpec[], initialState: State): Reducer {
  const problems = [
    ...handlersProblems(handlers, 'handlers'),
    ...initialStateProblems(initialState, 'initial_state'),
  ];
  if (problems.length > 0) {
    throw new Error(
      `invalid projection definition: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`,
    );
  }
  const compiled: CompiledHandler[] = handlers.map((handler) => ({
    pattern: handler.event_type,
    steps: handler.operations.map(compileOperation),
  }));
  const initial = () => copyJson(initialState);
  return {
    initial,
    apply(state, event) {
      let current = state;
      for (const handler of compiled) {
        if (!matchesPattern(handler.pattern, event.event_type)) continue;
        for (const step of handler.steps) {
          if (step.op === 'delete') return null;
          current ??= initial();
          run(step, current, event);
        }
      }
      return current;
    },
  };
}

// ---------------------------------------------------------------- folding

/** A projection's state at a stream version; `state` null = deleted. */
export interface FoldPoint {
  state: State | null;
  /** Stream version the state is at (0: before the first event). */
  version: number;
  last_event_id: string | null;
  /** When the event at `version` was stored. */
  last_event_at: Date | null;
}

/** Where every stream starts: the initial state, before its first event. */
export function startPoint(reducer: Reducer): FoldPoint {
  return { state: reducer.initial(), version: 0, last_event_id: null, last_event_at: null };
}

/**
 * Folds a stream's events (in version order) into `from`, which is not changed. Events at or
 * below `from.version` are already in it and skipped; a missing version throws (the log is
 * gap-free per stream, so that would be a bug, never a reason to compute a wrong state).
 */
export function foldEvents(reducer: Reducer, from: FoldPoint, events: readonly ProjectionEvent[]): FoldPoint {
  let state = from.state === null ? null : copyJson(from.state);
  let { version, last_event_id, last_event_at } = from;
  for (const event of events) {
    if (event.stream_version <= version) continue;
    if (event.stream_version !== version + 1) {
      throw new Error(
        `stream ${event.stream_id}: version ${version + 1} missing before ${event.stream_version}`,
      );
    }
    state = reducer.apply(state, event);
    version = event.stream_version;
    last_event_id = event.event_id;
    last_event_at = event.created_at;
  }
  return { state, version, last_event_id, last_event_at };
}
