-- 0002: the transactional outbox for lifecycle messages other than event.stored (which is relayed
-- straight from event.events), relay checkpoints, and dead letters of the ingest channels.

CREATE SEQUENCE event.outbox_position_seq AS bigint;

-- Written in the same transaction as the change it announces; relayed in position order by the
-- same gap-free follower as the events (src/store/follower.ts).
CREATE TABLE event.outbox (
    position   bigint       NOT NULL DEFAULT nextval('event.outbox_position_seq') PRIMARY KEY,
    msg_id     varchar(255) NOT NULL,
    subject    varchar(512) NOT NULL,
    payload    jsonb        NOT NULL,
    headers    jsonb        NOT NULL DEFAULT '{}',
    created_at timestamptz  NOT NULL DEFAULT now()
);
ALTER SEQUENCE event.outbox_position_seq OWNED BY event.outbox.position;

-- How far each relay got: every position at or below is published.
CREATE TABLE event.relay_checkpoints (
    name       varchar(100) PRIMARY KEY,
    position   bigint       NOT NULL DEFAULT 0,
    updated_at timestamptz  NOT NULL DEFAULT now()
);

-- Messages an ingest channel could not turn into events (unparseable, invalid): kept for an admin
-- to inspect instead of being retried forever or dropped silently.
CREATE TABLE event.dead_letters (
    dead_letter_id bigserial    PRIMARY KEY,
    channel        varchar(50)  NOT NULL,
    subject        varchar(512),
    message_id     varchar(255),
    payload        text         NOT NULL,
    headers        jsonb        NOT NULL DEFAULT '{}',
    error          text         NOT NULL,
    received_at    timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_received_idx ON event.dead_letters (received_at DESC);
CREATE UNIQUE INDEX dead_letters_message_idx ON event.dead_letters (channel, message_id) WHERE message_id IS NOT NULL;
