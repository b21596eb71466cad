-- 0012: an event's row is written once. Its processing outcome lives in a narrow table.
--
-- Completing an event updated its row in event.events: a new version of a wide row (~450 bytes)
-- that seldom fitted on its page (fillfactor 85), so most of those updates were not heap-only and
-- inserted the new version into every index of the table: ~1.3 kB of WAL and half of PostgreSQL's
-- CPU per processed event. A page with room for every update (fillfactor 50) made them heap-only
-- but cost appends 15-20 % (twice the pages to extend and log).
--
-- The outcome (status, processed_at, processors, error_message, retry_count, updated_at) is now
-- inserted into event.event_outcomes, keyed by position, when an event is processed, fails or
-- waits for a retry; event.events is append-only. An event without an outcome row reads as its
-- row was stored (pending, or the status it was stored with). Readers use event.events_current,
-- which has the columns of event.events and the outcome applied; a query that reads none of the
-- outcome's columns does not touch the outcome table (PostgreSQL removes the outer join).

CREATE TABLE event.event_outcomes (
    position      bigint      PRIMARY KEY,
    status        varchar(20) NOT NULL,
    processed_at  timestamptz,
    processors    text[]      NOT NULL DEFAULT '{}',
    error_message text,
    retry_count   integer     NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE VIEW event.events_current AS
SELECT e.position, e.event_id, e.event_type, e.event_source, e.event_category, e.user_id, e.session_id,
    e.organization_id, e.device_id, e.correlation_id, e.data, e.metadata, e.context, e.properties,
    COALESCE(o.status, e.status) AS status,
    CASE WHEN o.position IS NULL THEN e.processed_at ELSE o.processed_at END AS processed_at,
    COALESCE(o.processors, e.processors) AS processors,
    CASE WHEN o.position IS NULL THEN e.error_message ELSE o.error_message END AS error_message,
    COALESCE(o.retry_count, e.retry_count) AS retry_count,
    e."timestamp", e.created_at, COALESCE(o.updated_at, e.updated_at) AS updated_at,
    e.version, e.schema_version, e.stream_id, e.entity_type, e.entity_id, e.stream_version,
    e.idempotency_key, e.content_hash
FROM event.events AS e
LEFT JOIN event.event_outcomes AS o ON o.position = e.position;

-- Rows are no longer updated: new pages are filled.
ALTER TABLE event.events SET (fillfactor = 100);

-- Nothing updates an event's row any more: every UPDATE fails, not only one of its content.
DROP TRIGGER events_immutable ON event.events;
CREATE TRIGGER events_immutable
    BEFORE UPDATE ON event.events
    FOR EACH ROW
    EXECUTE FUNCTION event.forbid_content_update();
