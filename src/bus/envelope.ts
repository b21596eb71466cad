/** The envelope of every lifecycle message (DESIGN.md §6). Pure. */
import type { OutboxMessage } from '../store/outbox.js';

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

/** A lifecycle message for the outbox: `id` is both its `Nats-Msg-Id` and the envelope's id. */
export function outboxMessage<T>(id: string, subject: LifecycleSubject, data: T, time: Date): OutboxMessage {
  return { msgId: id, subject, payload: envelope(id, subject, data, time) };
}

/** The JetStream stream that holds every lifecycle subject. */
export const EVENT_STREAM = 'event-stream';
