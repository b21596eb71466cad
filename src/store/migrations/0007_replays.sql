-- 0007: replay jobs (POST /api/v1/events/replay), and which replay a processing result belongs to.
-- How replay works: docs/architecture.md, "Replay"; the SQL: src/store/replay.ts.

-- One row per replay. status: queued | running | completed | failed | cancelled.
-- The selected events are those of `selection` (the request, normalized) at positions up to
-- `last_position`, read in position order; every one of them at or below `cursor_position` is
-- done, and counted in `replayed` or `failed`. While an instance works on a job it holds a lease
-- (`lease_owner` until `lease_until`, renewed as it goes); a job whose lease has expired (its
-- instance died) is taken over where its cursor stands.
CREATE TABLE event.replays (
    replay_id       uuid         PRIMARY KEY,
    status          varchar(20)  NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    selection       jsonb        NOT NULL,
    target_service  varchar(128) NOT NULL,
    subject         varchar(160) NOT NULL,
    reprocess       boolean      NOT NULL DEFAULT false,
    total           bigint       NOT NULL,
    replayed        bigint       NOT NULL DEFAULT 0,
    failed          bigint       NOT NULL DEFAULT 0,
    last_position   bigint       NOT NULL,
    cursor_position bigint       NOT NULL,
    lease_owner     uuid,
    lease_until     timestamptz,
    -- The last error met while working (the job retries); the reason when status = failed.
    error           text,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz  NOT NULL DEFAULT now()
);
-- Claims: the oldest unfinished job first.
CREATE INDEX replays_active_idx ON event.replays (created_at) WHERE status IN ('queued', 'running');
-- The job list, newest first.
CREATE INDEX replays_created_idx ON event.replays (created_at DESC, replay_id DESC);

-- Results of a replay with `reprocess: true` name it; the engine's own results have NULL here.
ALTER TABLE event.processing_results ADD COLUMN replay_id uuid;
CREATE INDEX processing_results_replay_idx ON event.processing_results (replay_id, result_id)
    WHERE replay_id IS NOT NULL;
