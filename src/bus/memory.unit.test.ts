/** The in-process bus's message-id dedupe: bounded by count and by the stream's duplicate window. */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { encodeJson } from './bus.js';
import { createMemoryBus } from './memory.js';

describe('memory bus dedupe', () => {
  it('drops an id seen within the window, and forgets the oldest ids beyond the bound', async () => {
    const bus = createMemoryBus({ maxMessagesPerStream: 1_000 });
    await bus.ensureStream({ name: 's', subjects: ['t.>'] });
    for (let i = 0; i < 5_000; i++) await bus.publish('t.a', encodeJson({ i }), { msgId: `m-${i}` });
    const before = bus.streamMessages('s').at(-1)!.seq;

    await bus.publish('t.a', encodeJson({ again: 4_999 }), { msgId: 'm-4999' });
    expect(bus.streamMessages('s').at(-1)!.seq).toBe(before);

    // 5,000 ids published, 1,000 remembered: the first is forgotten and stored again.
    await bus.publish('t.a', encodeJson({ again: 0 }), { msgId: 'm-0' });
    expect(bus.streamMessages('s').at(-1)!.seq).toBe(before + 1);
    // Messages are bounded too (trimmed in slices of a tenth).
    expect(bus.streamMessages('s').length).toBeLessThanOrEqual(1_100);
    await bus.close();
  });

  it('takes an id again once the duplicate window has passed', async () => {
    const bus = createMemoryBus();
    await bus.ensureStream({ name: 's', subjects: ['t.>'], duplicateWindowMs: 50 });
    await bus.publish('t.a', encodeJson({ n: 1 }), { msgId: 'same' });
    await bus.publish('t.a', encodeJson({ n: 2 }), { msgId: 'same' });
    expect(bus.streamMessages('s')).toHaveLength(1);
    await sleep(120);
    await bus.publish('t.a', encodeJson({ n: 3 }), { msgId: 'same' });
    expect(bus.streamMessages('s')).toHaveLength(2);
    await bus.close();
  });
});
