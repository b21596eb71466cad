-- 0009: processing moves an event's status without touching the indexes of event.events.
--
-- The queue and dead-letter indexes of 0003 had `status` in their predicates, so every status
-- change (claim, completion, retry) was a non-HOT update that inserted the new row version into
-- all eleven indexes of the table. Membership now lives in two narrow tables kept in the same
-- transactions as the status: an event waiting for processing (pending, or processing under a
-- claim) has a row in processing_queue, a dead letter (failed) one in failed_events. No index of
-- event.events names a processing column any more, and the pages keep room for the new row
-- versions (fillfactor), so these updates are heap-only.

CREATE TABLE event.processing_queue (position bigint PRIMARY KEY);
-- Every processed event deletes its row: vacuumed after a fixed number of dead rows, not a share
-- of a table that is small whatever its churn, so claims do not walk long runs of dead entries.
ALTER TABLE event.processing_queue SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_cost_limit = 2000);
CREATE TABLE event.failed_events (position bigint PRIMARY KEY);

INSERT INTO event.processing_queue (position)
    SELECT position FROM event.events WHERE status IN ('pending', 'processing');
INSERT INTO event.failed_events (position)
    SELECT position FROM event.events WHERE status = 'failed';

DROP INDEX event.events_processing_queue_idx;
DROP INDEX event.events_failed_idx;

-- New pages keep 15% free: an event is updated about twice while it is processed.
ALTER TABLE event.events SET (fillfactor = 85);
