-- 0001: the event log, streams, the seed's other tables, and the statistics rollups.
-- Runs on PostgreSQL 15+ and on PGlite. Why each index exists: docs/decisions.md.

CREATE SCHEMA IF NOT EXISTS event;

-- Global order. A follower never reads this directly by "max position": see src/store/follower.ts.
CREATE SEQUENCE event.events_position_seq AS bigint;

CREATE TABLE event.events (
    position        bigint       NOT NULL DEFAULT nextval('event.events_position_seq') PRIMARY KEY,
    event_id        varchar(255) NOT NULL,
    event_type      varchar(255) NOT NULL,
    event_source    varchar(50)  NOT NULL,
    event_category  varchar(50)  NOT NULL,

    user_id         varchar(255),
    session_id      varchar(255),
    organization_id varchar(255),
    device_id       varchar(255),
    correlation_id  varchar(255),

    data            jsonb        NOT NULL DEFAULT '{}',
    metadata        jsonb        NOT NULL DEFAULT '{}',
    context         jsonb,
    properties      jsonb,

    status          varchar(20)  NOT NULL DEFAULT 'pending',
    processed_at    timestamptz,
    processors      text[]       NOT NULL DEFAULT '{}',
    error_message   text,
    retry_count     integer      NOT NULL DEFAULT 0,

    "timestamp"     timestamptz  NOT NULL,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    updated_at      timestamptz  NOT NULL DEFAULT now(),

    version         varchar(20)  NOT NULL DEFAULT '1.0.0',
    schema_version  varchar(20)  NOT NULL DEFAULT '1.0.0',

    stream_id       varchar(512),
    entity_type     varchar(100),
    entity_id       varchar(255),
    stream_version  integer,
    idempotency_key varchar(255),
    content_hash    char(64)     NOT NULL,

    CONSTRAINT events_stream_fields CHECK ((stream_id IS NULL) = (stream_version IS NULL))
);
ALTER SEQUENCE event.events_position_seq OWNED BY event.events.position;

CREATE UNIQUE INDEX events_event_id_key ON event.events (event_id);
CREATE UNIQUE INDEX events_stream_version_key ON event.events (stream_id, stream_version) WHERE stream_id IS NOT NULL;
CREATE UNIQUE INDEX events_idempotency_key ON event.events (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_timestamp_idx ON event.events ("timestamp", position);
CREATE INDEX events_user_timestamp_idx ON event.events (user_id, "timestamp", position) WHERE user_id IS NOT NULL;
CREATE INDEX events_type_timestamp_idx ON event.events (event_type, "timestamp", position);
CREATE INDEX events_session_idx ON event.events (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX events_correlation_idx ON event.events (correlation_id) WHERE correlation_id IS NOT NULL;
CREATE INDEX events_organization_idx ON event.events (organization_id) WHERE organization_id IS NOT NULL;
CREATE INDEX events_device_idx ON event.events (device_id) WHERE device_id IS NOT NULL;

-- Event content is immutable: an UPDATE that names a content column fails; only processing fields
-- (status, processed_at, processors, error_message, retry_count, updated_at) may change.
CREATE FUNCTION event.forbid_content_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'event content is immutable (event %)', OLD.event_id USING ERRCODE = '55000';
END;
$$;
CREATE TRIGGER events_immutable
    BEFORE UPDATE OF position, event_id, event_type, event_source, event_category, user_id, session_id,
        organization_id, device_id, correlation_id, data, metadata, context, properties, "timestamp",
        created_at, stream_id, entity_type, entity_id, stream_version, idempotency_key, content_hash
    ON event.events
    FOR EACH ROW
    EXECUTE FUNCTION event.forbid_content_update();

-- One row per stream, kept current in the appending transaction; its row lock serializes appends
-- to one stream. version 0 = the stream has no events (a row left by an append that did not commit
-- any event to it).
CREATE TABLE event.event_streams (
    stream_id      varchar(512) PRIMARY KEY,
    stream_type    varchar(100) NOT NULL,
    entity_id      varchar(255) NOT NULL,
    entity_type    varchar(100) NOT NULL,
    version        integer      NOT NULL DEFAULT 0,
    first_event_id varchar(255),
    last_event_id  varchar(255),
    first_position bigint,
    last_position  bigint,
    created_at     timestamptz  NOT NULL DEFAULT now(),
    updated_at     timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (entity_type, entity_id)
);

CREATE TABLE event.event_projections (
    projection_id   varchar(255) PRIMARY KEY,
    projection_name varchar(255) NOT NULL,
    entity_id       varchar(255) NOT NULL,
    entity_type     varchar(100) NOT NULL,
    state           jsonb        NOT NULL DEFAULT '{}',
    version         integer      NOT NULL DEFAULT 0,
    last_event_id   varchar(255),
    created_at      timestamptz  NOT NULL DEFAULT now(),
    updated_at      timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (entity_type, entity_id, projection_name)
);

CREATE TABLE event.event_processors (
    processor_id      varchar(255) PRIMARY KEY,
    processor_name    varchar(255) NOT NULL UNIQUE,
    processor_type    varchar(100) NOT NULL,
    enabled           boolean      NOT NULL DEFAULT true,
    priority          integer      NOT NULL DEFAULT 0,
    filters           jsonb        NOT NULL DEFAULT '{}',
    config            jsonb        NOT NULL DEFAULT '{}',
    error_count       integer      NOT NULL DEFAULT 0,
    last_error        text,
    last_processed_at timestamptz,
    created_at        timestamptz  NOT NULL DEFAULT now(),
    updated_at        timestamptz  NOT NULL DEFAULT now()
);

CREATE TABLE event.event_subscriptions (
    subscription_id  varchar(255) PRIMARY KEY,
    subscriber_name  varchar(255) NOT NULL UNIQUE,
    subscriber_type  varchar(100) NOT NULL,
    event_types      text[]       NOT NULL DEFAULT '{}',
    event_sources    text[],
    event_categories text[],
    callback_url     text,
    webhook_secret   text,
    enabled          boolean      NOT NULL DEFAULT true,
    retry_policy     jsonb        NOT NULL DEFAULT '{}',
    created_at       timestamptz  NOT NULL DEFAULT now(),
    updated_at       timestamptz  NOT NULL DEFAULT now()
);

CREATE TABLE event.processing_results (
    result_id      bigserial    PRIMARY KEY,
    event_id       varchar(255) NOT NULL,
    processor_name varchar(255) NOT NULL,
    status         varchar(20)  NOT NULL,
    message        text,
    processed_at   timestamptz  NOT NULL DEFAULT now(),
    duration_ms    integer
);
CREATE INDEX processing_results_event_idx ON event.processing_results (event_id);

-- Statistics rollups, maintained in the appending transaction (and by status changes), so that
-- statistics never scan the events table. Buckets are UTC hours and days of the event timestamp.
CREATE TABLE event.stats_hourly (
    bucket            timestamptz  NOT NULL,
    event_source      varchar(50)  NOT NULL,
    event_category    varchar(50)  NOT NULL,
    event_type        varchar(255) NOT NULL,
    status            varchar(20)  NOT NULL,
    event_count       bigint       NOT NULL DEFAULT 0,
    processing_ms_sum double precision NOT NULL DEFAULT 0,
    processing_count  bigint       NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, event_source, event_category, event_type, status)
);

CREATE TABLE event.stats_daily (LIKE event.stats_hourly INCLUDING ALL);

-- All-time event count per user, for "top users" without a scan.
CREATE TABLE event.stats_users (
    user_id     varchar(255) PRIMARY KEY,
    event_count bigint       NOT NULL DEFAULT 0
);
CREATE INDEX stats_users_count_idx ON event.stats_users (event_count DESC, user_id);
