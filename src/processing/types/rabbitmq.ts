/**
 * `rabbitmq`: publishes the event (JSON) to an exchange with a routing key, as a persistent
 * message on a confirm channel: a run succeeds only once the broker has confirmed the message
 * (written to disk for durable queues). Published as `mandatory`: a message the exchange routes to
 * no queue comes back and the run is retried, instead of the message vanishing.
 *
 * Config: `{url, exchange, routing_key}`; `exchange` "" is the default exchange (routing key =
 * queue name); the routing key may carry `{event_type}`, `{event_source}`, `{event_category}`.
 * The exchange is not declared here: it is the broker owner's. Message id =
 * `<event_id>:<processor_id>`, stable across retries, for consumers to dedupe.
 */
import { connect, type ChannelModel, type ConfirmChannel, type Message } from 'amqplib';
import type { Logger } from 'pino';
import { deliveryKey, type ProcessorResult, type ProcessorType } from '../processor-type.js';
import { ConfigChecker, expandTemplate, placeholderProblem } from './checks.js';
import { ConnectionPool, within } from './pool.js';
import { redact } from './redis-stream.js';

export interface RabbitmqConfig {
  url: string;
  exchange: string;
  routing_key: string;
}

interface Link {
  model: ChannelModel;
  channel: ConfirmChannel;
  /** Message ids the broker returned as unroutable, until their publish looks. */
  returned: Set<string>;
}

const CONNECT_TIMEOUT_MS = 5000;

export function rabbitmqProcessorType(deps: { logger?: Logger }): ProcessorType & { close(): Promise<void> } {
  const pool: ConnectionPool<Link> = new ConnectionPool<Link>(
    async (url) => {
      const model = await connect(url, { timeout: CONNECT_TIMEOUT_MS });
      try {
        const channel = await model.createConfirmChannel();
        const link: Link = { model, channel, returned: new Set() };
        const broken = (error?: Error) => {
          if (error)
            deps.logger?.warn({ err: error, url: redact(url) }, 'rabbitmq processor: connection lost');
          pool.drop(url, link);
        };
        // Without listeners an error event would crash the process.
        model.on('error', broken);
        model.on('close', () => broken());
        channel.on('error', broken);
        channel.on('close', () => broken());
        channel.on('return', (message: Message) => {
          const id = message.properties.messageId as string | undefined;
          if (id !== undefined) link.returned.add(id);
        });
        return link;
      } catch (error) {
        await model.close().catch(() => undefined);
        throw error;
      }
    },
    async (link) => {
      await link.model.close();
    },
  );

  return {
    description:
      'publish the event as a persistent, confirmed message: config.url, config.exchange, config.routing_key',
    validate(config) {
      const check = new ConfigChecker(config, ['url', 'exchange', 'routing_key']);
      check.url('url', ['amqp:', 'amqps:']);
      check.string('exchange', { required: true, minLength: 0, maxLength: 255 });
      const key = check.string('routing_key', { required: true, minLength: 0, maxLength: 255 });
      if (key !== undefined) {
        const problem = placeholderProblem(key);
        if (problem) check.problem('routing_key', problem);
      }
      return check.problems;
    },
    async run(event, rawConfig, context): Promise<ProcessorResult> {
      const config = rawConfig as unknown as RabbitmqConfig;
      const routingKey = expandTemplate(config.routing_key, event);
      const link = await within(
        pool.get(config.url),
        context.timeoutMs,
        context.signal,
        'connecting to RabbitMQ',
      );
      const messageId = deliveryKey(event, context);
      link.returned.delete(messageId);
      const confirmed = new Promise<void>((resolve, reject) => {
        link.channel.publish(
          config.exchange,
          routingKey,
          Buffer.from(context.eventJson()),
          {
            persistent: true,
            mandatory: true,
            contentType: 'application/json',
            messageId,
            type: event.event_type,
            timestamp: Math.floor(event.timestamp.getTime() / 1000),
            headers: { 'event-id': event.event_id, 'processor-name': context.processor.processor_name },
          },
          (error: unknown) =>
            error
              ? reject(error instanceof Error ? error : new Error('the broker did not confirm the message'))
              : resolve(),
        );
      });
      await within(confirmed, context.timeoutMs, context.signal, 'publisher confirm');
      if (link.returned.delete(messageId)) {
        return {
          type: 'retry',
          message: `unroutable: exchange ${JSON.stringify(config.exchange)} routes ${JSON.stringify(routingKey)} to no queue`,
        };
      }
      return {
        type: 'success',
        message: `confirmed by ${config.exchange || '(default exchange)'} as ${routingKey}`,
      };
    },
    close: () => pool.close(),
  };
}
