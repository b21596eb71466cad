/**
 * Makes frontend events durable before the collector answers: published to JetStream (subject
 * `events.frontend.{category}.{event_type}`, `Nats-Msg-Id` = event id, resolved on the stream's
 * ack) when the bus is NATS and connected; else, or for any event whose publish fails, appended to
 * the store directly. The consumer of `events.frontend.>` stores the published ones with the same
 * event id and content, so an event that went both ways (a publish whose ack was lost) is stored
 * once.
 */
import type { Logger } from 'pino';
import { encodeJson, type Bus } from '../bus/bus.js';
import type { NewEvent } from '../domain/event.js';
import type { EventStore } from '../store/index.js';
import { toEvent } from './backend.js';
import type { FrontendInput } from './frontend-model.js';

export interface CollectedEvent extends FrontendInput {
  /** The same input, normalized (what the store gets on the direct road). */
  event: NewEvent;
}

/** Where the events went: all to JetStream, or (some or all) straight to the store. */
export type Durability = 'stream' | 'store';

export interface FrontendCollector {
  /** Resolves once every event is durable; throws when neither road is available. */
  collect(events: CollectedEvent[]): Promise<Durability>;
}

/** The event as the consumer of `events.frontend.>` would store it. */
function repeatable(collected: CollectedEvent): NewEvent {
  if (collected.event.clientEventId) return collected.event;
  const mapped = toEvent(collected.input, collected.event.timestamp);
  if (!mapped.ok)
    throw new Error(`frontend event ${collected.input.event_id} no longer maps: ${mapped.error}`);
  return mapped.event;
}

export function createFrontendCollector(deps: {
  bus: Bus;
  store: EventStore;
  logger?: Logger;
}): FrontendCollector {
  const { bus, store, logger } = deps;

  async function commit(events: NewEvent[]): Promise<void> {
    const outcome = await store.append({ events });
    if (outcome.type === 'rejected') throw outcome.error;
  }

  return {
    async collect(events) {
      if (bus.kind !== 'nats' || !bus.connected) {
        await commit(events.map((e) => e.event));
        return 'store';
      }
      const settled = await Promise.allSettled(
        events.map((e) => bus.publish(e.subject, encodeJson(e.input), { msgId: e.input.event_id })),
      );
      const failed = events.filter((_, i) => settled[i]!.status === 'rejected');
      if (failed.length === 0) return 'stream';
      const reason: unknown = (settled.find((s) => s.status === 'rejected') as PromiseRejectedResult).reason;
      logger?.warn(
        { err: reason, failed: failed.length, of: events.length },
        'frontend events not published to JetStream: stored directly',
      );
      // A publish whose ack was lost may still reach the consumer: stored here as a repeatable
      // event (client id and content hash, as the consumer stores it), the second one is a repeat.
      await commit(failed.map(repeatable));
      return 'store';
    },
  };
}
