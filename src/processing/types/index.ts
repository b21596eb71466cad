/**
 * The built-in processor types, and the set the registry and the engine use: the built-ins plus an
 * embedding program's own (`processorTypes` of `buildApp` / `startWorkers`; a custom type with a
 * built-in name replaces it). Connections (HTTP agent, Redis, RabbitMQ) open on first use and
 * close with `close()`.
 */
import type { Logger } from 'pino';
import type { Bus } from '../../bus/bus.js';
import { createOutboundDispatcher } from '../../net/ssrf.js';
import type { ProcessorType, ProcessorTypes } from '../processor-type.js';
import { publishProcessorType } from './publish.js';
import { rabbitmqProcessorType } from './rabbitmq.js';
import { redisStreamProcessorType } from './redis-stream.js';
import { webhookProcessorType } from './webhook.js';

export const BuiltinProcessorType = {
  WEBHOOK: 'webhook',
  PUBLISH: 'publish',
  REDIS_STREAM: 'redis_stream',
  RABBITMQ: 'rabbitmq',
} as const;
export type BuiltinProcessorType = (typeof BuiltinProcessorType)[keyof typeof BuiltinProcessorType];

export interface ProcessorTypeSet {
  readonly types: ProcessorTypes;
  get(name: string): ProcessorType | undefined;
  names(): string[];
  close(): Promise<void>;
}

export interface ProcessorTypeDeps {
  bus: Bus;
  allowPrivateNetworks: boolean;
  /** Most HTTP connections per webhook origin. */
  httpConnections?: number;
  userAgent?: string;
  logger?: Logger;
  /** Extra types of an embedding program. */
  custom?: ProcessorTypes;
}

/** Custom type names: what a `processor_type` column holds. */
export const TYPE_NAME = /^[a-z][a-z0-9_.-]{0,99}$/;

export function createProcessorTypes(deps: ProcessorTypeDeps): ProcessorTypeSet {
  for (const name of Object.keys(deps.custom ?? {})) {
    if (!TYPE_NAME.test(name)) {
      throw new Error(
        `processor type name ${JSON.stringify(name)}: use lower case letters, digits, _ . - (at most 100)`,
      );
    }
  }
  const dispatcher = createOutboundDispatcher({
    allowPrivate: deps.allowPrivateNetworks,
    connections: deps.httpConnections,
  });
  const types: Record<string, ProcessorType> = {
    [BuiltinProcessorType.WEBHOOK]: webhookProcessorType({ dispatcher, userAgent: deps.userAgent }),
    [BuiltinProcessorType.PUBLISH]: publishProcessorType({ bus: deps.bus }),
    [BuiltinProcessorType.REDIS_STREAM]: redisStreamProcessorType({ logger: deps.logger }),
    [BuiltinProcessorType.RABBITMQ]: rabbitmqProcessorType({ logger: deps.logger }),
    ...deps.custom,
  };
  return {
    types,
    get: (name) => (Object.hasOwn(types, name) ? types[name] : undefined),
    names: () => Object.keys(types).sort(),
    async close() {
      await Promise.all(
        Object.values(types).map((type) =>
          (type.close?.() ?? Promise.resolve()).catch((error: unknown) =>
            deps.logger?.warn({ err: error }, 'closing a processor type failed'),
          ),
        ),
      );
      await dispatcher.close();
    },
  };
}
