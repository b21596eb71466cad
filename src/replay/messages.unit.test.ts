import { describe, expect, it } from 'vitest';
import { decodeText } from '../bus/bus.js';
import type { StoredEvent } from '../domain/event.js';
import type { ReplayRow } from '../store/replay.js';
import { completedMessage, replayedMessage, startedMessage } from './messages.js';

const job: ReplayRow = {
  replay_id: '0190f0f0-0000-7000-8000-000000000001',
  status: 'completed',
  selection: { event_ids: ['e1', 'e2'], event_type: 'order.paid' },
  target_service: 'billing',
  subject: 'event.replayed.billing',
  reprocess: true,
  total: 2,
  replayed: 1,
  failed: 1,
  last_position: 9,
  cursor_position: 9,
  lease_owner: null,
  lease_until: null,
  error: null,
  created_at: new Date('2024-01-01T00:00:00Z'),
  started_at: new Date('2024-01-01T00:00:01Z'),
  finished_at: new Date('2024-01-01T00:00:02Z'),
  updated_at: new Date('2024-01-01T00:00:02Z'),
};

describe('replay messages', () => {
  it('a replayed event: the whole stored event in the lifecycle envelope, id {replay_id}:{event_id}', () => {
    const event = {
      event_id: 'e1',
      event_type: 'order.paid',
      position: 7,
      data: { n: 1 },
    } as unknown as StoredEvent;
    const message = replayedMessage(job, event, '2024-01-01T00:00:01.500Z');
    expect(message.subject).toBe('event.replayed.billing');
    expect(message.msgId).toBe(`${job.replay_id}:e1`);
    expect(JSON.parse(decodeText(message.data))).toEqual({
      id: `${job.replay_id}:e1`,
      type: 'event.replayed.billing',
      source: 'event_service',
      time: '2024-01-01T00:00:01.500Z',
      data: { event_id: 'e1', event_type: 'order.paid', position: 7, data: { n: 1 } },
    });
  });

  it('started and completed: one message id per replay, the counts, the selection summed up', () => {
    const time = new Date('2024-01-01T00:00:03Z');
    const started = startedMessage(job, time);
    expect(started).toMatchObject({
      msgId: `replay-started-${job.replay_id}`,
      subject: 'event.replay.started',
      payload: {
        id: `replay-started-${job.replay_id}`,
        type: 'event.replay.started',
        source: 'event_service',
        time: '2024-01-01T00:00:03.000Z',
        data: {
          replay_id: job.replay_id,
          events_count: 2,
          selection: { event_ids_count: 2, event_type: 'order.paid' },
          stream_id: null,
          target_service: 'billing',
          subject: 'event.replayed.billing',
          reprocess: true,
          dry_run: false,
        },
      },
    });
    expect(completedMessage(job, time)).toMatchObject({
      msgId: `replay-completed-${job.replay_id}`,
      subject: 'event.replay.completed',
      payload: {
        data: {
          replay_id: job.replay_id,
          status: 'completed',
          total: 2,
          replayed: 1,
          failed: 1,
          error: null,
          started_at: '2024-01-01T00:00:01.000Z',
          finished_at: '2024-01-01T00:00:02.000Z',
        },
      },
    });
  });
});
