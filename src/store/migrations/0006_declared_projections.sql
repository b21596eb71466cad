-- 0006: declared projections: definitions registered over the API (a reducer per event type of an
-- entity type) and the state they materialize per stream, kept current by the projector
-- (src/projections/projector.ts). The state rows are a cache of what the immutable events and the
-- definition determine: reads fold the events after a row's version from the log, so they are
-- exact whether or not the projector has caught up. How it works: docs/architecture.md,
-- "Projections".

CREATE TABLE event.projection_definitions (
    definition_id       varchar(64)  PRIMARY KEY,
    name                varchar(100) NOT NULL UNIQUE,
    entity_type         varchar(100) NOT NULL,
    description         text,
    handlers            jsonb        NOT NULL,
    initial_state       jsonb        NOT NULL DEFAULT '{}',
    -- Bumped by each rebuild: state rows of an older generation are recomputed, never read.
    generation          integer      NOT NULL DEFAULT 1,
    -- 'rebuilding' until the checkpoint reaches rebuild_target, then 'live'.
    status              varchar(20)  NOT NULL,
    -- Every event at or below this position is applied (in this generation).
    checkpoint          bigint       NOT NULL DEFAULT 0,
    -- Where the current generation started following the log, and the newest position then.
    rebuild_from        bigint       NOT NULL DEFAULT 0,
    rebuild_target      bigint       NOT NULL DEFAULT 0,
    -- Events of the entity type folded in this generation.
    events_applied      bigint       NOT NULL DEFAULT 0,
    rebuild_started_at  timestamptz  NOT NULL DEFAULT now(),
    rebuild_finished_at timestamptz,
    created_at          timestamptz  NOT NULL DEFAULT now(),
    updated_at          timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT projection_definitions_status CHECK (status IN ('rebuilding', 'live'))
);

-- One row per definition and stream, written by the projector with the definition's checkpoint in
-- one transaction. `state` NULL: deleted by a `delete` operation (the entity reads as 404).
CREATE TABLE event.projection_states (
    projection_name varchar(100) NOT NULL
        REFERENCES event.projection_definitions (name) ON DELETE CASCADE,
    stream_id       varchar(512) NOT NULL,
    entity_type     varchar(100) NOT NULL,
    entity_id       varchar(255) NOT NULL,
    generation      integer      NOT NULL,
    version         integer      NOT NULL,
    state           jsonb,
    last_event_id   varchar(255) NOT NULL,
    -- created_at of the event at `version`.
    last_event_at   timestamptz  NOT NULL,
    updated_at      timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (projection_name, stream_id)
);
