/**
 * `webhook`: POSTs the event (JSON, as `GET /api/v1/events/{id}` returns it) to `config.url`.
 * 2xx is a success; timeouts, connection errors, 408, 429 and 5xx are retried; other answers (a
 * 4xx, a redirect, which is never followed) and a URL that now resolves to a forbidden address
 * fail for good. Calls go through the SSRF-guarded dispatcher (src/net/ssrf.ts).
 *
 * Config: `{url, headers?, timeout_ms?}`.
 */
import { request, type Dispatcher } from 'undici';
import { checkTargetUrl, ForbiddenTargetError } from '../../net/ssrf.js';
import { traceHeaders, traceOfMetadata } from '../../observability/trace-context.js';
import { deliveryKey, type ProcessorResult, type ProcessorType } from '../processor-type.js';
import { ConfigChecker } from './checks.js';

export interface WebhookConfig {
  url: string;
  headers?: Record<string, string>;
  timeout_ms?: number;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Headers the service sets itself or that would break the framing of the request. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-connection',
]);
export const MAX_WEBHOOK_TIMEOUT_MS = 600_000;

/** Answers retried: the receiver may accept the same request later. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

function forbidden(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e instanceof ForbiddenTargetError || (e as { code?: unknown }).code === 'EFORBIDDEN') return true;
  }
  return false;
}

export function webhookProcessorType(deps: { dispatcher: Dispatcher; userAgent?: string }): ProcessorType {
  return {
    description: 'POST the event as JSON to config.url (headers?, timeout_ms?); 2xx = success',
    async validate(config, context) {
      const check = new ConfigChecker(config, ['url', 'headers', 'timeout_ms']);
      const url = check.string('url', { required: true, maxLength: 2048 });
      if (url !== undefined) {
        const problem = await checkTargetUrl(url, context.allowPrivateNetworks);
        if (problem) check.problem('url', problem);
      }
      const headers = config.headers;
      if (headers !== undefined) {
        if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
          check.problem('headers', 'must be an object of header names to string values');
        } else {
          const entries = Object.entries(headers as Record<string, unknown>);
          if (entries.length > 50) check.problem('headers', 'must have at most 50 headers');
          for (const [name, value] of entries) {
            if (!TOKEN.test(name)) check.problem(`headers.${name}`, 'is not a valid header name');
            else if (RESERVED_HEADERS.has(name.toLowerCase()))
              check.problem(`headers.${name}`, 'is set by the service and cannot be configured');
            else if (typeof value !== 'string') check.problem(`headers.${name}`, 'must be a string');
            // eslint-disable-next-line no-control-regex
            else if (/[\r\n\u0000]/.test(value) || value.length > 8192)
              check.problem(`headers.${name}`, 'must be at most 8192 characters without line breaks');
          }
        }
      }
      check.integer('timeout_ms', 1, MAX_WEBHOOK_TIMEOUT_MS);
      return check.problems;
    },
    async run(event, rawConfig, context): Promise<ProcessorResult> {
      const config = rawConfig as unknown as WebhookConfig;
      const key = deliveryKey(event, context, encodeURIComponent);
      try {
        const response = await request(config.url, {
          method: 'POST',
          dispatcher: deps.dispatcher,
          signal: context.signal,
          headersTimeout: context.timeoutMs,
          bodyTimeout: context.timeoutMs,
          headers: {
            ...config.headers,
            'content-type': 'application/json',
            'user-agent': deps.userAgent ?? 'event-service',
            'x-event-id': encodeURIComponent(event.event_id),
            'x-event-type': encodeURIComponent(event.event_type),
            'x-processor-name': encodeURIComponent(context.processor.processor_name),
            // Stable across retries of this event for this processor: receivers dedupe on it.
            'idempotency-key': key,
            // The trace the event was created in: the receiver continues it.
            ...traceHeaders(traceOfMetadata(event.metadata)),
          },
          body: context.eventJson(),
        });
        await response.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
        const status = response.statusCode;
        if (status >= 200 && status < 300) return { type: 'success', message: `HTTP ${status}` };
        if (isRetryableStatus(status)) return { type: 'retry', message: `HTTP ${status}` };
        if (status >= 300 && status < 400) {
          return { type: 'failed', message: `HTTP ${status}: redirects are not followed` };
        }
        return { type: 'failed', message: `HTTP ${status}` };
      } catch (error) {
        if (forbidden(error)) {
          return { type: 'failed', message: `refused: ${(error as Error).message}` };
        }
        if (context.signal.aborted) {
          return { type: 'retry', message: `timed out after ${context.timeoutMs} ms` };
        }
        const code = (error as { code?: string }).code;
        return { type: 'retry', message: `${code ? `${code}: ` : ''}${(error as Error).message}` };
      }
    },
  };
}
