/** The envelope of every lifecycle message (DESIGN.md §6). Pure. */

export const LifecycleSubject = {
  STORED: 'event.stored',
  PROCESSED_SUCCESS: 'event.processed.success',
  PROCESSED_FAILED: 'event.processed.failed',
  SUBSCRIPTION_CREATED: 'event.subscription.created',
  PROJECTION_CREATED: 'event.projection.created',
  REPLAY_STARTED: 'event.replay.started',
  REPLAY_COMPLETED: 'event.replay.completed',
} as const;
export type LifecycleSubject = (typeof LifecycleSubject)[keyof typeof LifecycleSubject];

export interface Envelope<T = unknown> {
  id: string;
  type: string;
  source: 'event_service';
  time: string;
  data: T;
}

export function envelope<T>(id: string, type: string, data: T, time: Date): Envelope<T> {
  return { id, type, source: 'event_service', time: time.toISOString(), data };
}

/** The JetStream stream that holds every lifecycle subject. */
export const EVENT_STREAM = 'event-stream';
