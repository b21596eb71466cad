-- 0008: content_hash only for events that can be repeated (a client event_id or an idempotency
-- key): nothing ever compares the hash of the others, and computing it cost the collector ~4% of
-- its CPU. A NULL hash never equals a new request's, so reusing the server-chosen id of such an
-- event is a 409, not a repeat. Dropping NOT NULL changes the catalog only.
ALTER TABLE event.events ALTER COLUMN content_hash DROP NOT NULL;
