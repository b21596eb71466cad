-- 0010: API keys of the HTTP API (src/auth/). Only the SHA-256 of a key is kept: a key is 32
-- random bytes, so a fast hash is as safe as a slow one and a lookup by hash is one index probe.
-- A revoked key keeps its row (revoked_at set): the key list shows it, and the first-start key is
-- never generated again once any key has existed.

CREATE TABLE event.api_keys (
    key_id      text        PRIMARY KEY,
    key_hash    text        NOT NULL UNIQUE,
    name        text        NOT NULL,
    scopes      text[]      NOT NULL,
    user_id     text,
    -- 'api': created through POST /api/v1/auth/keys; 'bootstrap': generated at the first start.
    origin      text        NOT NULL DEFAULT 'api' CHECK (origin IN ('api', 'bootstrap')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);

-- At most one first-start key, ever: instances starting together insert it with ON CONFLICT DO
-- NOTHING, and only the one whose row went in prints it.
CREATE UNIQUE INDEX api_keys_one_bootstrap_idx ON event.api_keys ((origin)) WHERE origin = 'bootstrap';
