/** Chooses the bus for the configuration and declares the lifecycle stream on it. */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Bus } from './bus.js';
import { EVENT_STREAM } from './envelope.js';
import { createMemoryBus } from './memory.js';
import { createNatsBus } from './nats.js';

export type { Bus } from './bus.js';

export async function openBus(config: Config, logger?: Logger): Promise<Bus> {
  const bus = config.natsUrl ? createNatsBus({ servers: config.natsUrl, logger }) : createMemoryBus();
  // Declared now; on NATS applied as soon as (and every time) the connection is up.
  await bus.ensureStream({
    name: EVENT_STREAM,
    subjects: ['event.>'],
    maxAgeMs: config.natsStreamMaxAgeMs,
    maxBytes: config.natsStreamMaxBytes === 0 ? -1 : config.natsStreamMaxBytes,
    duplicateWindowMs: config.natsDuplicateWindowMs,
  });
  return bus;
}
