/**
 * One HTTP attempt: POST the signed body through the SSRF-guarded dispatcher, within the timeout,
 * abortable. Reports what happened (it decides nothing: retry.ts does); never throws.
 */
import { request, type Dispatcher } from 'undici';
import { ForbiddenTargetError } from '../net/ssrf.js';
import type { AttemptResult } from './retry.js';

/** How much of a response body the attempt log keeps, and how much is read at most. */
export const RESPONSE_EXCERPT_BYTES = 1024;
const RESPONSE_READ_LIMIT_BYTES = 64 * 1024;

export type SendResult = (AttemptResult & { responseBody?: string }) | { type: 'cancelled' };

export interface SendRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  dispatcher: Dispatcher;
  timeoutMs: number;
  /** Aborted when the subscription is disabled or deleted meanwhile: the result is `cancelled`. */
  cancel: AbortSignal;
}

function isForbidden(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof ForbiddenTargetError) return true;
    if ((e as { code?: unknown }).code === 'EFORBIDDEN') return true;
  }
  return false;
}

function describe(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    const message = e instanceof Error ? e.message : typeof e === 'string' ? e : 'error';
    parts.push(typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message);
  }
  return [...new Set(parts)].join(': ').slice(0, 500) || 'network error';
}

async function readExcerpt(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let kept = 0;
  let read = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    read += chunk.length;
    if (kept < RESPONSE_EXCERPT_BYTES) {
      const part = chunk.subarray(0, RESPONSE_EXCERPT_BYTES - kept);
      chunks.push(part);
      kept += part.length;
    }
    if (read >= RESPONSE_READ_LIMIT_BYTES) {
      // Enough: do not let an endpoint make us read without end.
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function sendAttempt(req: SendRequest): Promise<SendResult> {
  if (req.cancel.aborted) return { type: 'cancelled' };
  const timeout = AbortSignal.timeout(req.timeoutMs);
  const signal = AbortSignal.any([timeout, req.cancel]);
  try {
    const response = await request(req.url, {
      method: 'POST',
      headers: req.headers,
      body: req.body,
      dispatcher: req.dispatcher,
      signal,
      headersTimeout: req.timeoutMs,
      bodyTimeout: req.timeoutMs,
    });
    let responseBody = '';
    try {
      responseBody = await readExcerpt(response.body);
    } catch {
      // The status is what counts; a body cut short (timeout, reset) leaves the excerpt empty.
    }
    const retryAfter = response.headers['retry-after'];
    return {
      type: 'response',
      status: response.statusCode,
      retryAfter: Array.isArray(retryAfter) ? (retryAfter[0] ?? null) : (retryAfter ?? null),
      responseBody,
    };
  } catch (error) {
    if (req.cancel.aborted) return { type: 'cancelled' };
    if (timeout.aborted || (error as { code?: unknown }).code === 'UND_ERR_HEADERS_TIMEOUT') {
      return { type: 'timeout', afterMs: req.timeoutMs };
    }
    if (isForbidden(error))
      return { type: 'refused', message: `refused by the SSRF guard: ${describe(error)}` };
    return { type: 'network', message: describe(error) };
  }
}
