/** The columns every read returns; their names are the JSON field names of `StoredEvent`. */
export const EVENT_COLUMNS = `position, event_id, event_type, event_source, event_category, user_id, session_id,
  organization_id, device_id, correlation_id, data, metadata, context, properties, status, processed_at,
  processors, error_message, retry_count, "timestamp", created_at, updated_at, version, schema_version,
  stream_id, entity_type, entity_id, stream_version, idempotency_key`;
