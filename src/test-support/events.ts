/** Events appended straight to a store in tests (no HTTP). */
import { normalizeCreate, type StoredEvent } from '../domain/event.js';
import type { EventStore } from '../store/index.js';

/** Appends `n` events of `type` (data `{i}`) in one unit; the stored events, in order. */
export async function appendEvents(store: EventStore, n: number, type: string): Promise<StoredEvent[]> {
  const events = Array.from({ length: n }, (_, i) => {
    const normalized = normalizeCreate({ event_type: type, data: { i } }, 'body', () => new Date());
    if (!normalized.ok) throw new Error(`invalid test event: ${JSON.stringify(normalized.errors)}`);
    return normalized.event;
  });
  const outcome = await store.append({ events });
  if (outcome.type !== 'appended') throw new Error(`rejected: ${outcome.error.message}`);
  return outcome.events.map((e) => e.event);
}
