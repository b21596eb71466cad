/**
 * The seed's default projection: the state maps each event type to the data of the latest event
 * of that type; the version is the number of events applied.
 */

export type ProjectionState = Record<string, unknown>;

export interface FoldedEvent {
  event_id: string;
  event_type: string;
  data: unknown;
  stream_version: number;
  created_at: Date;
}

export interface Folded {
  state: ProjectionState;
  version: number;
  last_event_id: string | null;
  last_event_at: Date | null;
}

export const DEFAULT_PROJECTION = 'default';

export function applyDefault(state: ProjectionState, event: FoldedEvent): ProjectionState {
  return { ...state, [event.event_type]: event.data };
}

/**
 * Folds events (in version order, continuing `from`) and calls `boundary` with the result after
 * each event whose version is a multiple of `every` (where snapshots are kept).
 */
export function fold(
  from: Folded,
  events: readonly FoldedEvent[],
  every: number,
  boundary: (folded: Folded) => void = () => undefined,
): Folded {
  let current = from;
  for (const event of events) {
    current = {
      state: applyDefault(current.state, event),
      version: event.stream_version,
      last_event_id: event.event_id,
      last_event_at: event.created_at,
    };
    if (every > 0 && current.version % every === 0) boundary(current);
  }
  return current;
}
