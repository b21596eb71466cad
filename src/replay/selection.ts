/**
 * From a replay request to what the job stores: the selection, the target subject and the flags.
 * Pure. The route schema has checked shapes and bounds; this checks what a schema cannot say.
 *
 * A selection names events by `event_ids`, by `stream_id`, or by a time range (`start_time` and
 * `end_time`, both inclusive); `event_type` and `event_source` narrow it further. When more than
 * one of the three is given they narrow each other (the seed's own example sends `stream_id` with
 * a time range), rather than one silently winning over the other.
 */
import { ValidationError, type FieldProblem } from '../domain/errors.js';
import { parseTimestamp, type EventSource } from '../domain/event.js';
import { subjectToken } from '../domain/subjects.js';
import type { ReplaySelection } from '../store/replay.js';

/** The request body as the schema accepted it (`null` = not given, as the seed's clients send). */
export interface ReplayRequest {
  event_ids?: string[] | null;
  stream_id?: string | null;
  start_time?: string | null;
  end_time?: string | null;
  event_type?: string | null;
  event_source?: EventSource | null;
  target_service?: string | null;
  reprocess?: boolean;
  dry_run?: boolean;
}

export interface ReplayPlan {
  selection: ReplaySelection;
  /** The target as given (default `all`). */
  targetService: string;
  /** `event.replayed.{target}`, the target made a safe subject token. */
  subject: string;
  reprocess: boolean;
  dryRun: boolean;
}

export const DEFAULT_TARGET = 'all';
export const REPLAYED_SUBJECT_PREFIX = 'event.replayed.';

export function replayedSubject(targetService: string): string {
  return `${REPLAYED_SUBJECT_PREFIX}${subjectToken(targetService)}`;
}

const given = <T>(value: T | null | undefined): value is T => value !== undefined && value !== null;

/** Checks the request and turns it into a plan; throws ValidationError naming every problem. */
export function planReplay(request: ReplayRequest): ReplayPlan {
  const problems: FieldProblem[] = [];
  const selection: ReplaySelection = {};

  if (given(request.event_ids)) {
    const seen = new Map<string, number>();
    request.event_ids.forEach((id, index) => {
      const first = seen.get(id);
      if (first !== undefined)
        problems.push({ path: `body.event_ids[${index}]`, message: `repeats body.event_ids[${first}]` });
      else seen.set(id, index);
    });
    selection.event_ids = [...seen.keys()];
  }
  if (given(request.stream_id)) selection.stream_id = request.stream_id;

  const start = given(request.start_time) ? request.start_time : undefined;
  const end = given(request.end_time) ? request.end_time : undefined;
  if (start !== undefined || end !== undefined) {
    const from = start === undefined ? null : parseTimestamp(start);
    const to = end === undefined ? null : parseTimestamp(end);
    if (start === undefined) problems.push({ path: 'body.start_time', message: 'is required with end_time' });
    else if (!from) problems.push({ path: 'body.start_time', message: 'is out of range' });
    if (end === undefined) problems.push({ path: 'body.end_time', message: 'is required with start_time' });
    else if (!to) problems.push({ path: 'body.end_time', message: 'is out of range' });
    if (from && to) {
      if (to.getTime() < from.getTime())
        problems.push({ path: 'body.end_time', message: 'must not be before start_time' });
      selection.start_time = from.toISOString();
      selection.end_time = to.toISOString();
    }
  }
  if (!given(request.event_ids) && !given(request.stream_id) && start === undefined && end === undefined) {
    problems.push({
      path: 'body',
      message: 'must name the events to replay: event_ids, stream_id, or start_time with end_time',
    });
  }
  if (given(request.event_type)) selection.event_type = request.event_type;
  if (given(request.event_source)) selection.event_source = request.event_source;

  const targetService = given(request.target_service) ? request.target_service : DEFAULT_TARGET;
  if (targetService.trim() === '')
    problems.push({ path: 'body.target_service', message: 'must not be blank' });
  if (problems.length > 0) throw new ValidationError(problems);
  return {
    selection,
    targetService,
    subject: replayedSubject(targetService),
    reprocess: request.reprocess ?? false,
    dryRun: request.dry_run ?? false,
  };
}

/** A selection as answers and messages show it: a long id list is summed up by its length. */
export function selectionView(selection: ReplaySelection): Record<string, unknown> {
  const { event_ids, ...rest } = selection;
  return event_ids === undefined ? rest : { ...rest, event_ids_count: event_ids.length };
}
