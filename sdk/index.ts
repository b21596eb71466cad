/**
 * The TypeScript client of the event service: `import { EventServiceClient } from 'event-service/sdk'`.
 * Explicit exports only: what is not listed here is internal.
 */
export { DEFAULT_BASE_URL, EventServiceClient } from './client.js';
export type { EventServiceClientOptions, QueryAllRequest } from './client.js';
export type { CallOptions } from './request.js';
export type { RetryOptions } from './retry.js';
export { DEFAULT_RETRY } from './retry.js';
export {
  ClientClosedError,
  EventServiceError,
  NetworkError,
  TimeoutError,
  isEventServiceError,
} from './errors.js';
export type { ErrorBody, FieldProblem } from './errors.js';
export type * from './types.js';
