/**
 * What replay publishes. Pure.
 *
 * - `event.replayed.{target}`: one message per replayed event, the envelope of the lifecycle
 *   messages (`{id, type, source, time, data}`) with the whole stored event as `data` (as in
 *   `event.stored`); `id` and `Nats-Msg-Id` are `{replay_id}:{event_id}`, so a page published again
 *   after a crash is dropped by JetStream as a duplicate, and a consumer tells replays apart.
 * - `event.replay.started` (when the job is accepted) and `event.replay.completed` (when it ends:
 *   `status` completed, failed or cancelled, with its counts), through the outbox.
 */
import { encodeJson } from '../bus/bus.js';
import { LifecycleSubject, outboxMessage, type Envelope } from '../bus/envelope.js';
import type { StoredEvent } from '../domain/event.js';
import type { OutboxMessage } from '../store/outbox.js';
import type { ReplayRow } from '../store/replay.js';
import { selectionView } from './selection.js';

export interface PublishedMessage {
  subject: string;
  msgId: string;
  data: Uint8Array;
}

export const replayedMessageId = (replayId: string, eventId: string) => `${replayId}:${eventId}`;

/** One replayed event; `time` (ISO) is when this page was replayed. */
export function replayedMessage(
  job: Pick<ReplayRow, 'replay_id' | 'subject'>,
  event: StoredEvent,
  time: string,
): PublishedMessage {
  const id = replayedMessageId(job.replay_id, event.event_id);
  const message: Envelope<StoredEvent> = {
    id,
    type: job.subject,
    source: 'event_service',
    time,
    data: event,
  };
  return { subject: job.subject, msgId: id, data: encodeJson(message) };
}

const encoder = new TextEncoder();

/**
 * The same message from the event's JSON text as the database wrote it (store/replay.ts,
 * `readReplayPageJson`): nothing is parsed or serialized again.
 */
export function replayedMessageFromJson(
  job: Pick<ReplayRow, 'replay_id' | 'subject'>,
  event: { event_id: string; json: string },
  time: string,
): PublishedMessage {
  const id = replayedMessageId(job.replay_id, event.event_id);
  const text =
    `{"id":${JSON.stringify(id)},"type":${JSON.stringify(job.subject)},"source":"event_service",` +
    `"time":${JSON.stringify(time)},"data":${event.json}}`;
  return { subject: job.subject, msgId: id, data: encoder.encode(text) };
}

type JobFacts = Pick<
  ReplayRow,
  'replay_id' | 'selection' | 'target_service' | 'subject' | 'reprocess' | 'total'
>;

export function startedMessage(job: JobFacts, time: Date): OutboxMessage {
  const id = `replay-started-${job.replay_id}`;
  const subject = LifecycleSubject.REPLAY_STARTED;
  return outboxMessage(
    id,
    subject,
    {
      replay_id: job.replay_id,
      events_count: job.total,
      selection: selectionView(job.selection),
      stream_id: job.selection.stream_id ?? null,
      target_service: job.target_service,
      subject: job.subject,
      reprocess: job.reprocess,
      dry_run: false,
      timestamp: time.toISOString(),
    },
    time,
  );
}

export function completedMessage(
  job: JobFacts & Pick<ReplayRow, 'status' | 'replayed' | 'failed' | 'error' | 'started_at' | 'finished_at'>,
  time: Date,
): OutboxMessage {
  const id = `replay-completed-${job.replay_id}`;
  const subject = LifecycleSubject.REPLAY_COMPLETED;
  return outboxMessage(
    id,
    subject,
    {
      replay_id: job.replay_id,
      status: job.status,
      total: job.total,
      replayed: job.replayed,
      failed: job.failed,
      error: job.error,
      selection: selectionView(job.selection),
      target_service: job.target_service,
      subject: job.subject,
      reprocess: job.reprocess,
      started_at: job.started_at?.toISOString() ?? null,
      finished_at: job.finished_at?.toISOString() ?? null,
      timestamp: time.toISOString(),
    },
    time,
  );
}
