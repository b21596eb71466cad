/**
 * The body of a delivery, pure. The Standard Webhooks payload shape `{type, timestamp, data}`:
 * `type` is the event type, `timestamp` when the event happened, `data` the stored event's
 * content. Only immutable fields are sent (processing status and the like change over time), so
 * every attempt of a delivery carries the same bytes.
 */

export interface DeliverableEvent {
  position: number;
  event_id: string;
  event_type: string;
  event_source: string;
  event_category: string;
  user_id: string | null;
  session_id: string | null;
  organization_id: string | null;
  device_id: string | null;
  correlation_id: string | null;
  data: unknown;
  metadata: unknown;
  context: unknown;
  properties: unknown;
  timestamp: Date;
  created_at: Date;
  version: string;
  schema_version: string;
  stream_id: string | null;
  entity_type: string | null;
  entity_id: string | null;
  stream_version: number | null;
  idempotency_key: string | null;
}

/** The columns of `event.events` a delivery needs, prefixed with the given alias. */
export function deliverableColumns(alias: string): string {
  return [
    'position',
    'event_id',
    'event_type',
    'event_source',
    'event_category',
    'user_id',
    'session_id',
    'organization_id',
    'device_id',
    'correlation_id',
    'data',
    'metadata',
    'context',
    'properties',
    '"timestamp"',
    'created_at',
    'version',
    'schema_version',
    'stream_id',
    'entity_type',
    'entity_id',
    'stream_version',
    'idempotency_key',
  ]
    .map((column) => `${alias}.${column}`)
    .join(', ');
}

export interface WebhookPayload {
  type: string;
  timestamp: string;
  data: Omit<DeliverableEvent, 'timestamp' | 'created_at'> & { timestamp: string; created_at: string };
}

export function webhookPayload(event: DeliverableEvent): WebhookPayload {
  return {
    type: event.event_type,
    timestamp: event.timestamp.toISOString(),
    data: {
      event_id: event.event_id,
      event_type: event.event_type,
      event_source: event.event_source,
      event_category: event.event_category,
      user_id: event.user_id,
      session_id: event.session_id,
      organization_id: event.organization_id,
      device_id: event.device_id,
      correlation_id: event.correlation_id,
      data: event.data,
      metadata: event.metadata,
      context: event.context,
      properties: event.properties,
      timestamp: event.timestamp.toISOString(),
      created_at: event.created_at.toISOString(),
      version: event.version,
      schema_version: event.schema_version,
      position: event.position,
      stream_id: event.stream_id,
      entity_type: event.entity_type,
      entity_id: event.entity_id,
      stream_version: event.stream_version,
      idempotency_key: event.idempotency_key,
    },
  };
}

export function webhookBody(event: DeliverableEvent): string {
  return JSON.stringify(webhookPayload(event));
}
