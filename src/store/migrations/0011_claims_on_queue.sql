-- 0011: a claim is written to the narrow queue row, not to the event.
--
-- Claiming an event used to update its row in event.events (status `processing`, lease, token),
-- and completing it updated the row again: two new versions of a wide row, most of them not
-- heap-only, each inserting into all eleven indexes of the table. The claim (lease, token, retry
-- delay) now lives in event.processing_queue, whose row the event has while it waits; the event's
-- row is written once, when its outcome is. An event under a live claim reads as `processing`
-- (store/rows.ts), its stored status stays `pending` until then, and the statistics count it
-- from the queue (store/statistics.ts).

ALTER TABLE event.processing_queue
    ADD COLUMN lease_until     timestamptz,
    ADD COLUMN claim_token     uuid,
    ADD COLUMN next_attempt_at timestamptz;
-- A claim and its release update every queue row in place: pages keep room for the new versions,
-- so these updates are heap-only (the table is small, its rows narrow).
ALTER TABLE event.processing_queue SET (fillfactor = 50);

-- Claims and retry delays held at upgrade move to the queue.
UPDATE event.processing_queue AS q
SET lease_until = e.lease_until, claim_token = e.claim_token, next_attempt_at = e.next_attempt_at
FROM event.events AS e
WHERE e.position = q.position AND (e.lease_until IS NOT NULL OR e.next_attempt_at IS NOT NULL);

-- `processing` is no longer a stored status: those events (and their rollup counts) are pending.
UPDATE event.events SET status = 'pending' WHERE status = 'processing';

INSERT INTO event.stats_hourly AS t (bucket, event_source, event_category, event_type, status, event_count,
    processing_ms_sum, processing_count)
SELECT bucket, event_source, event_category, event_type, 'pending', event_count, 0, 0
FROM event.stats_hourly WHERE status = 'processing' AND event_count <> 0
ON CONFLICT (bucket, event_source, event_category, event_type, status) DO UPDATE
SET event_count = t.event_count + excluded.event_count;
DELETE FROM event.stats_hourly WHERE status = 'processing';

INSERT INTO event.stats_daily AS t (bucket, event_source, event_category, event_type, status, event_count,
    processing_ms_sum, processing_count)
SELECT bucket, event_source, event_category, event_type, 'pending', event_count, 0, 0
FROM event.stats_daily WHERE status = 'processing' AND event_count <> 0
ON CONFLICT (bucket, event_source, event_category, event_type, status) DO UPDATE
SET event_count = t.event_count + excluded.event_count;
DELETE FROM event.stats_daily WHERE status = 'processing';

ALTER TABLE event.events
    DROP COLUMN lease_until,
    DROP COLUMN claim_token,
    DROP COLUMN next_attempt_at;
