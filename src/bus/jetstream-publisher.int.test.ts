/** The JetStream publisher against the real nats-server: order, acks across event-loop turns, close. */
import { randomUUID } from 'node:crypto';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedNatsUrl } from '../test-support/nats.js';
import { createJetStreamPublisher } from './jetstream-publisher.js';

describe('JetStream publisher', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const stream = `pub-${randomUUID().slice(0, 8)}`;
  const subject = `pubtest.${stream}`;
  beforeAll(async () => {
    nc = await connect({ servers: sharedNatsUrl() });
    jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`${subject}.>`] });
  });
  afterAll(async () => {
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
  });

  it('publishes made from separate event-loop callbacks are each acked and stored in publish order', async () => {
    const publisher = createJetStreamPublisher(nc, 5000);
    const calls: number[] = [];
    try {
      // Like the collector: one publish per I/O callback, several callbacks per turn of the loop.
      const acks = await Promise.all(
        Array.from(
          { length: 300 },
          (_, i) =>
            new Promise<void>((resolve, reject) => {
              const h = headers();
              h.set('Nats-Msg-Id', `order-${i}`);
              const publish = (): void => {
                calls.push(i);
                publisher.publish(`${subject}.order`, Buffer.from(String(i)), h).then(resolve, reject);
              };
              if (i % 3 === 0) setImmediate(publish);
              else if (i % 3 === 1) setTimeout(publish, 0);
              else publish();
            }),
        ),
      );
      expect(acks).toHaveLength(300);
      const info = await jsm.streams.info(stream);
      expect(info.state.messages).toBe(300);
      // Stored in the order the publishes were made.
      const made: number[] = [];
      for (let seq = 1; seq <= 300; seq++) {
        const message = await jsm.streams.getMessage(stream, { seq });
        made.push(Number(Buffer.from(message!.data).toString()));
      }
      expect(made).toEqual(calls);
      expect(new Set(made).size).toBe(300);
    } finally {
      publisher.close();
    }
  });

  it('close rejects the publishes not yet handed to the connection, and what waits for an ack', async () => {
    const before = (await jsm.streams.info(stream)).state.messages;
    const publisher = createJetStreamPublisher(nc, 5000);
    const pending = [1, 2, 3].map((i) => publisher.publish(`${subject}.closed`, Buffer.from(String(i))));
    publisher.close();
    for (const p of pending) await expect(p).rejects.toThrow(/closed/);
    // Nothing of it reached the stream after the close.
    await new Promise((resolve) => setImmediate(resolve));
    await nc.flush();
    expect((await jsm.streams.info(stream)).state.messages).toBe(before);
  });
});
