-- 0005: snapshots of projection state, so that reading a projection folds at most SNAPSHOT_EVERY
-- events after the newest snapshot at or below the version asked for. A snapshot is a cache: it is
-- derived from the immutable events of its stream and written once (reads fill in what is missing).
-- How it works: docs/architecture.md, "Projections".

CREATE TABLE event.projection_snapshots (
    stream_id       varchar(512) NOT NULL,
    projection_name varchar(255) NOT NULL,
    version         integer      NOT NULL,
    state           jsonb        NOT NULL,
    last_event_id   varchar(255) NOT NULL,
    -- created_at of the event at `version`: when the projection last changed.
    last_event_at   timestamptz  NOT NULL,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, projection_name, version)
);
