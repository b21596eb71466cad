-- 0003: the processing engine's claims, leases and retry schedule on event.events, and which
-- processor (by id) and which attempt each processing result belongs to.
-- Processing columns may change; the content trigger (0001) only refuses content columns.

-- A claim: `claim_token` names the engine run that holds the event, `lease_until` when the claim
-- expires (a crashed instance's claims are picked up after it). `next_attempt_at` holds a retry
-- back until its backoff has passed.
ALTER TABLE event.events
    ADD COLUMN lease_until     timestamptz,
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN claim_token     uuid;

-- The engine's queue: only events still to process are in it, so it stays small however many
-- events are stored.
CREATE INDEX events_processing_queue_idx ON event.events (position) WHERE status IN ('pending', 'processing');
-- Dead letters (`GET /api/v1/events/failed`), newest first.
CREATE INDEX events_failed_idx ON event.events (position) WHERE status = 'failed';

-- processor_name is kept (the seed's column, readable after a processor is deleted); processor_id
-- is what "already succeeded" is checked by, so a renamed processor is not run twice.
ALTER TABLE event.processing_results
    ADD COLUMN processor_id varchar(255),
    ADD COLUMN attempt      integer;
