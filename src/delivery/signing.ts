/**
 * Standard Webhooks signing, pure (https://www.standardwebhooks.com): a delivery carries
 * `webhook-id` (stable across attempts), `webhook-timestamp` (Unix seconds, fresh per attempt) and
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with the
 * base64-decoded secret after its `whsec_` prefix. Receivers verify with any Standard Webhooks
 * library (e.g. npm `standardwebhooks`).
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';

export const SECRET_PREFIX = 'whsec_';
/** The spec's bounds on the decoded secret. */
export const SECRET_MIN_BYTES = 24;
export const SECRET_MAX_BYTES = 64;
const GENERATED_SECRET_BYTES = 32;

/** Header names of a delivery. `webhook-attempt` is ours: 1 on the first attempt, 2 on the next … */
export const WebhookHeader = {
  ID: 'webhook-id',
  TIMESTAMP: 'webhook-timestamp',
  SIGNATURE: 'webhook-signature',
  ATTEMPT: 'webhook-attempt',
} as const;
export type WebhookHeader = (typeof WebhookHeader)[keyof typeof WebhookHeader];

/** A new secret: `whsec_` + base64 of 32 random bytes. */
export function generateSecret(random: (size: number) => Buffer = randomBytes): string {
  return SECRET_PREFIX + random(GENERATED_SECRET_BYTES).toString('base64');
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Why a secret is refused, or null. */
export function secretProblem(secret: string): string | null {
  if (!secret.startsWith(SECRET_PREFIX)) return `must start with ${SECRET_PREFIX}`;
  const encoded = secret.slice(SECRET_PREFIX.length);
  if (!BASE64.test(encoded)) return `must be ${SECRET_PREFIX} followed by standard base64`;
  const size = Buffer.from(encoded, 'base64').length;
  if (size < SECRET_MIN_BYTES || size > SECRET_MAX_BYTES) {
    return `must encode ${SECRET_MIN_BYTES} to ${SECRET_MAX_BYTES} bytes (it encodes ${size})`;
  }
  return null;
}

/** The HMAC key of a secret: the base64 decoding of what follows `whsec_`. */
export function secretKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  return Buffer.from(encoded, 'base64');
}

/** `v1,<base64 HMAC-SHA256(key, "{msgId}.{timestamp}.{body}")>`. */
export function sign(secret: string, msgId: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', secretKey(secret))
    .update(`${msgId}.${timestampSeconds}.${body}`)
    .digest('base64');
  return `v1,${mac}`;
}

/**
 * The `webhook-id` of an event's deliveries: `msg_<event_id>` (so a receiver can match it to the
 * event and to what the event's producer sent), or, for an event id that cannot travel in a
 * header (spaces, non-ASCII), `msg_` + a hash of it. The same for every attempt.
 */
export function webhookMessageId(eventId: string): string {
  if (/^[\x21-\x7e]{1,250}$/.test(eventId)) return `msg_${eventId}`;
  return `msg_${createHash('sha256').update(eventId).digest('base64url').slice(0, 32)}`;
}

export interface SignedRequest {
  secret: string;
  msgId: string;
  timestampSeconds: number;
  body: string;
  attempt: number;
}

/** Every header of one attempt: content type, the three Standard Webhooks headers, the attempt number. */
export function webhookHeaders(request: SignedRequest): Record<string, string> {
  return {
    'content-type': 'application/json',
    [WebhookHeader.ID]: request.msgId,
    [WebhookHeader.TIMESTAMP]: String(request.timestampSeconds),
    [WebhookHeader.SIGNATURE]: sign(request.secret, request.msgId, request.timestampSeconds, request.body),
    [WebhookHeader.ATTEMPT]: String(request.attempt),
  };
}
