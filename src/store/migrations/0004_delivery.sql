-- 0004: webhook subscriptions that deliver: what each subscription is and how it is doing, one
-- delivery per (subscription, event), and the log of every attempt. How it works:
-- docs/architecture.md, "Delivery".

ALTER TABLE event.event_subscriptions
    ADD COLUMN description          text,
    -- Only events with a higher position are delivered: the last position stored when the
    -- subscription was created (read under the events' position-order lock, see src/delivery/store.ts).
    ADD COLUMN start_position       bigint      NOT NULL DEFAULT 0,
    -- Why the subscription is disabled (automatically after failing too long, or on request).
    ADD COLUMN disabled_reason      text,
    ADD COLUMN disabled_at          timestamptz,
    -- Since when every attempt has failed (NULL after a success); drives automatic disabling.
    ADD COLUMN failing_since        timestamptz,
    ADD COLUMN consecutive_failures integer     NOT NULL DEFAULT 0;

-- Subscriptions that existed before deliveries did start from now, like new ones.
UPDATE event.event_subscriptions
SET start_position = (SELECT coalesce(max(position), 0) FROM event.events);

-- The fan-out follows the events from here: no subscription can want an older event.
INSERT INTO event.relay_checkpoints (name, position)
SELECT 'delivery-fanout', coalesce(max(position), 0) FROM event.events
ON CONFLICT (name) DO NOTHING;

-- One row per (subscription, event) to deliver. status: pending | delivered | failed.
-- While pending, next_attempt_at is when it is due; while an instance holds it (lease_token set),
-- next_attempt_at is when that lease expires, so an expired claim is simply due again.
CREATE TABLE event.webhook_deliveries (
    delivery_id          varchar(64)  PRIMARY KEY,
    subscription_id      varchar(255) NOT NULL
        REFERENCES event.event_subscriptions (subscription_id) ON DELETE CASCADE,
    event_id             varchar(255) NOT NULL,
    event_position       bigint       NOT NULL,
    status               varchar(20)  NOT NULL DEFAULT 'pending',
    -- Attempts ever made (the attempt-number header), and in the current round (a redelivery
    -- starts a new round with a fresh retry budget).
    attempts             integer      NOT NULL DEFAULT 0,
    round_attempts       integer      NOT NULL DEFAULT 0,
    next_attempt_at      timestamptz,
    lease_token          varchar(64),
    last_attempt_at      timestamptz,
    last_response_status integer,
    last_error           text,
    delivered_at         timestamptz,
    created_at           timestamptz  NOT NULL DEFAULT now(),
    updated_at           timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (subscription_id, event_id)
);
-- Claims: per subscription, the due pending deliveries in due order.
CREATE INDEX webhook_deliveries_due_idx ON event.webhook_deliveries (subscription_id, next_attempt_at)
    WHERE status = 'pending';
-- The delivery list of a subscription, newest event first.
CREATE INDEX webhook_deliveries_list_idx ON event.webhook_deliveries (subscription_id, event_position DESC);
-- "Is anything of this subscription in flight?" (disable and delete wait for it).
CREATE INDEX webhook_deliveries_leased_idx ON event.webhook_deliveries (subscription_id)
    WHERE lease_token IS NOT NULL;

-- Every attempt: what was answered, how long it took, what happens next.
-- status: delivered | retry | failed.
CREATE TABLE event.delivery_attempts (
    attempt_id      bigserial    PRIMARY KEY,
    delivery_id     varchar(64)  NOT NULL
        REFERENCES event.webhook_deliveries (delivery_id) ON DELETE CASCADE,
    subscription_id varchar(255) NOT NULL,
    attempt_number  integer      NOT NULL,
    status          varchar(20)  NOT NULL,
    response_status integer,
    response_body   text,
    error           text,
    duration_ms     integer      NOT NULL,
    attempted_at    timestamptz  NOT NULL,
    next_attempt_at timestamptz
);
CREATE INDEX delivery_attempts_delivery_idx ON event.delivery_attempts (delivery_id, attempt_id);
