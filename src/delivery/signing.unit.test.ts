import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import {
  generateSecret,
  secretKey,
  secretProblem,
  sign,
  webhookHeaders,
  webhookMessageId,
  WebhookHeader,
} from './signing.js';

// The Standard Webhooks test vector (docs: field notes).
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  msgId: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1674087231,
  body: '{"test": 2432232314}',
  signature: 'v1,AQG81rX2n4rTN1fkXoqILSHO9gAOcwya9dP41rhrQDI=',
};

describe('signing', () => {
  it('matches the Standard Webhooks test vector', () => {
    expect(sign(VECTOR.secret, VECTOR.msgId, VECTOR.timestamp, VECTOR.body)).toBe(VECTOR.signature);
  });

  it('agrees with the standardwebhooks library, as a receiver verifies', () => {
    const secret = generateSecret();
    const timestampSeconds = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({ type: 'user.created', data: { name: 'Zoë ✓' } });
    const headers = webhookHeaders({ secret, msgId: 'msg_abc', timestampSeconds, body, attempt: 3 });
    expect(headers[WebhookHeader.ATTEMPT]).toBe('3');
    expect(headers['content-type']).toBe('application/json');
    const receiver = new Webhook(secret);
    expect(receiver.verify(body, headers)).toEqual(JSON.parse(body));
    expect(headers[WebhookHeader.SIGNATURE]).toBe(
      receiver.sign('msg_abc', new Date(timestampSeconds * 1000), body),
    );
    // Tampering is caught.
    expect(() => receiver.verify(body.replace('Zoë', 'Zoe'), headers)).toThrow();
    expect(() => new Webhook(generateSecret()).verify(body, headers)).toThrow();
  });

  it('generates whsec_ secrets of 32 random bytes that pass its own check', () => {
    const a = generateSecret();
    const b = generateSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(a).not.toBe(b);
    expect(secretKey(a)).toHaveLength(32);
    expect(secretProblem(a)).toBeNull();
    expect(secretProblem(VECTOR.secret)).toBeNull();
  });

  it('refuses secrets that are not whsec_ + base64 of 24 to 64 bytes', () => {
    expect(secretProblem('secret_key')).toMatch(/whsec_/);
    expect(secretProblem('whsec_not base64!')).toMatch(/base64/);
    expect(secretProblem(`whsec_${Buffer.alloc(16).toString('base64')}`)).toMatch(/24 to 64 bytes/);
    expect(secretProblem(`whsec_${Buffer.alloc(65).toString('base64')}`)).toMatch(/24 to 64 bytes/);
    expect(secretProblem(`whsec_${Buffer.alloc(24).toString('base64')}`)).toBeNull();
  });

  it('derives a stable webhook-id from the event id, hashed when it cannot be a header', () => {
    expect(webhookMessageId('0190a1b2-c3d4')).toBe('msg_0190a1b2-c3d4');
    const odd = webhookMessageId('order 42 ✓');
    expect(odd).toMatch(/^msg_[A-Za-z0-9_-]{32}$/);
    expect(webhookMessageId('order 42 ✓')).toBe(odd);
    expect(webhookMessageId('order 43 ✓')).not.toBe(odd);
  });
});
