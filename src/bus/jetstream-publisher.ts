/**
 * JetStream publishes over core NATS, as the client's `js.publish` makes them (the message with a
 * reply subject; the stream answers there with its ack), without the client's request machinery:
 * one inbox subscription per connection, acks matched by the reply subject's last token, timeouts
 * swept a few times a second. The client completes every request by building an Error with its
 * stack (`RequestOne.cancel` after the reply, nats-core 3.4): ~9 % of the service's CPU, and more
 * in garbage collection, when it published 14,000 messages a second (processing with the NATS bus,
 * profiled).
 *
 * Publishes are handed to the connection together, once per turn of the event loop
 * (`setImmediate`): the client writes what one synchronous run published in one socket write, but
 * the collector publishes from a separate I/O callback per request, which cost a write system call
 * (and a wake-up of nats-server) per event.
 */
import { createInbox, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';

export interface JetStreamPublisher {
  /** Resolves on the stream's ack; rejects with the reason when there is none. */
  publish(subject: string, data: Uint8Array, headers?: MsgHdrs): Promise<void>;
  /** Rejects what waits and stops listening. */
  close(): void;
}

interface Outgoing {
  subject: string;
  data: Uint8Array;
  headers: MsgHdrs | undefined;
  token: string;
}

interface Waiting {
  resolve: () => void;
  reject: (error: Error) => void;
  at: number;
}

const decoder = new TextDecoder();

export function createJetStreamPublisher(nc: NatsConnection, timeoutMs: number): JetStreamPublisher {
  const inbox = createInbox();
  /** By reply token, in publish order (so the sweep stops at the first one still in time). */
  const waiting = new Map<string, Waiting>();
  let next = 0;
  let outgoing: Outgoing[] = [];

  const settle = (token: string, error: Error | null) => {
    const entry = waiting.get(token);
    if (!entry) return;
    waiting.delete(token);
    if (error) entry.reject(error);
    else entry.resolve();
  };

  /** Hands this turn's publishes to the client, which writes them out together. */
  const flush = () => {
    const batch = outgoing;
    outgoing = [];
    for (const { subject, data, headers, token } of batch) {
      try {
        nc.publish(subject, data, { reply: `${inbox}.${token}`, headers });
      } catch (error) {
        settle(token, error instanceof Error ? error : new Error(String(error)));
      }
    }
  };

  const subscription = nc.subscribe(`${inbox}.*`, {
    callback: (error, msg) => {
      if (error) return;
      const token = msg.subject.slice(inbox.length + 1);
      // A status without a body: 503 when nothing listens on the subject (no stream captures it).
      if (msg.headers?.hasError) {
        const reason =
          msg.headers.code === 503
            ? 'no JetStream stream captures the subject (no responders)'
            : `${msg.headers.code} ${msg.headers.description}`;
        settle(token, new Error(reason));
        return;
      }
      let ack: { stream?: string; error?: { description?: string; code?: number } };
      try {
        ack = JSON.parse(decoder.decode(msg.data)) as typeof ack;
      } catch {
        settle(token, new Error('invalid JetStream ack'));
        return;
      }
      if (ack.error) settle(token, new Error(ack.error.description ?? `JetStream error ${ack.error.code}`));
      else if (!ack.stream) settle(token, new Error('invalid JetStream ack'));
      else settle(token, null);
    },
  });

  const sweep = setInterval(
    () => {
      const expired = Date.now() - timeoutMs;
      for (const [token, entry] of waiting) {
        if (entry.at > expired) break;
        settle(token, new Error(`no JetStream ack within ${timeoutMs} ms`));
      }
    },
    Math.max(10, Math.min(250, Math.floor(timeoutMs / 4))),
  );
  sweep.unref();

  return {
    publish(subject, data, headers) {
      return new Promise<void>((resolve, reject) => {
        const token = (next++).toString(36);
        waiting.set(token, { resolve, reject, at: Date.now() });
        if (outgoing.push({ subject, data, headers, token }) === 1) setImmediate(flush);
      });
    },
    close() {
      clearInterval(sweep);
      outgoing = [];
      subscription.unsubscribe();
      for (const token of [...waiting.keys()]) settle(token, new Error('the NATS connection is closed'));
    },
  };
}
