-- +goose Up

-- API keys (DESIGN section 8). Only the SHA-256 of a key is stored: the
-- secret is shown once, at creation. Rows are never deleted, so the audit
-- trail's actor (a key's name) always names a key that can be looked up.
CREATE TABLE api_keys (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text        NOT NULL,
    key_hash     bytea       NOT NULL,
    role         text        NOT NULL,
    -- NULL: every pool.
    pools        text[],
    expires_at   timestamptz,
    -- Requests per second for this key; NULL: the pod's RATE_LIMIT.
    rate_limit   double precision,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz,
    -- The transaction that last changed what the verification caches hold
    -- (creation, revocation): pods re-read rows whose xid is at or above the
    -- xmin horizon of their previous read, which no commit can slip past.
    -- last_used_at updates leave it alone.
    xid          bigint      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    CONSTRAINT api_keys_name_unique UNIQUE (name),
    CONSTRAINT api_keys_hash_unique UNIQUE (key_hash),
    CONSTRAINT api_keys_name_format CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$'),
    CONSTRAINT api_keys_hash_length CHECK (octet_length(key_hash) = 32),
    CONSTRAINT api_keys_role CHECK (role IN ('admin', 'operator', 'client', 'reader')),
    CONSTRAINT api_keys_rate_limit CHECK (rate_limit IS NULL OR rate_limit > 0)
);

CREATE INDEX api_keys_xid ON api_keys (xid);

-- +goose Down
DROP TABLE api_keys;
