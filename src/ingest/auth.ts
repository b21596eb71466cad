/**
 * Credentials of the Segment-style channels, checked in constant time. Pure: headers and body in,
 * a decision out.
 *
 * - RudderStack webhook: the shared secret in `X-Signature` (the seed's header), as a Bearer token,
 *   or as the Basic-auth password (RudderStack's webhook destination sends static headers and
 *   never signs, so these are what an operator can configure).
 * - Tracking API: a write key as the Basic-auth username (Segment and RudderStack SDKs; the
 *   password is ignored), or as `writeKey` in the body (Segment's HTTP API allows it).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

type Headers = Record<string, string | string[] | undefined>;

/** Compares digests of both values, so neither their content nor their length leaks through timing. */
export function safeEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** True when `given` is one of `keys`; every key is compared, so the time does not tell which. */
export function isOneOf(given: string, keys: readonly string[]): boolean {
  let found = false;
  for (const key of keys) found = safeEqual(given, key) || found;
  return found;
}

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `Authorization: Basic base64(user:password)` split in two; null when absent or not Basic. */
export function basicCredentials(headers: Headers): { username: string; password: string } | null {
  const match = /^Basic\s+([A-Za-z0-9+/=_-]*)\s*$/i.exec(header(headers, 'authorization') ?? '');
  if (!match) return null;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0
    ? { username: decoded, password: '' }
    : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function bearerToken(headers: Headers): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header(headers, 'authorization') ?? '');
  return match ? match[1]! : null;
}

/** Every place the webhook secret may arrive in. */
export function webhookSecretCandidates(headers: Headers): string[] {
  const candidates: string[] = [];
  const signature = header(headers, 'x-signature');
  if (signature !== undefined) candidates.push(signature);
  const bearer = bearerToken(headers);
  if (bearer !== null) candidates.push(bearer);
  const basic = basicCredentials(headers);
  if (basic) candidates.push(basic.password);
  return candidates;
}

/** Whether a webhook request may pass: always when no secret is configured. */
export function webhookAuthorized(headers: Headers, secret: string | undefined): boolean {
  if (secret === undefined) return true;
  let ok = false;
  for (const candidate of webhookSecretCandidates(headers)) ok = safeEqual(candidate, secret) || ok;
  return ok;
}

/** The write key of a tracking request's header, when it has a Basic one. */
export function headerWriteKey(headers: Headers): string | null {
  const basic = basicCredentials(headers);
  return basic && basic.username !== '' ? basic.username : null;
}

/** The `writeKey` field of a tracking request's body, when it has one. */
export function bodyWriteKey(body: unknown): string | null {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return null;
  const value = (body as { writeKey?: unknown }).writeKey;
  return typeof value === 'string' && value !== '' ? value : null;
}
