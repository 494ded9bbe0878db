-- +goose Up

-- Lease ids are fencing tokens: one sequence for the whole service, so every
-- new lease outranks every earlier one.
CREATE SEQUENCE lease_id_seq AS bigint;

-- A token is free when it has no live lease, assigned while lease_expires_at
-- lies ahead, and dead once alive_until has passed. Deadlines are compared with
-- now() in every query, so correctness never waits for a sweep.
CREATE TABLE tokens (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    value            text        NOT NULL,
    imported         boolean     NOT NULL DEFAULT false,
    -- Random position among free tokens: claims probe the free index at a
    -- random point, and releases draw a new key.
    sort_key         double precision NOT NULL DEFAULT random(),
    lease_id         bigint,
    lease_ttl        interval,
    lease_expires_at timestamptz,
    holder           text,
    alive_until      timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tokens_value_length CHECK (octet_length(value) BETWEEN 1 AND 512),
    CONSTRAINT tokens_lease_complete CHECK (
        (lease_id IS NULL AND lease_ttl IS NULL AND lease_expires_at IS NULL AND holder IS NULL)
        OR (lease_id IS NOT NULL AND lease_ttl IS NOT NULL AND lease_expires_at IS NOT NULL))
) WITH (fillfactor = 80);

-- Lookups by value; values are unique among rows (a dead row is removed
-- before its value is imported again).
CREATE UNIQUE INDEX tokens_value_key ON tokens (value);
-- The claim: a random probe into free tokens.
CREATE INDEX tokens_free_by_sort_key ON tokens (sort_key) WHERE lease_id IS NULL;
-- Lapsed leases, earliest first: the claim's fallback and the release sweep.
CREATE INDEX tokens_lease_expiry ON tokens (lease_expires_at) WHERE lease_id IS NOT NULL;
-- Dead tokens, earliest first: the death sweep.
CREATE INDEX tokens_alive_until ON tokens (alive_until);

ALTER TABLE tokens SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.05,
    autovacuum_vacuum_cost_delay = 1
);

-- Pool statistics without a hot row: each write adjusts one of several slots
-- picked at random; stats sum the slots. total counts rows, assigned counts
-- rows holding a lease (live or lapsed but not yet swept).
CREATE TABLE token_counters (
    slot     smallint PRIMARY KEY,
    total    bigint NOT NULL DEFAULT 0,
    assigned bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 50);
INSERT INTO token_counters (slot) SELECT generate_series(0, 15);

-- The audit trail and change log: one row per state change, written in the
-- same statement as the change. Partitioned by day so retention drops whole
-- partitions instead of deleting rows.
CREATE SEQUENCE token_events_id_seq AS bigint;
CREATE TABLE token_events (
    id        bigint      NOT NULL DEFAULT nextval('token_events_id_seq'),
    -- The writing transaction, so that readers can take only rows whose
    -- transaction is older than every running one (gap-free reading).
    xid       bigint      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    at        timestamptz NOT NULL DEFAULT now(),
    kind      text        NOT NULL,
    token_id  bigint      NOT NULL,
    token     text        NOT NULL,
    lease_id  bigint,
    holder    text,
    pod       text        NOT NULL,
    CONSTRAINT token_events_kind CHECK (kind IN (
        'generated', 'imported', 'assigned', 'unblocked', 'released',
        'kept_alive', 'deleted', 'expired'))
) PARTITION BY RANGE (at);
ALTER SEQUENCE token_events_id_seq OWNED BY token_events.id;

-- Two indexes only, since every state change inserts here: the audit trail
-- of one token, and the change stream's gap-free read order. Time-range
-- questions are pruned to the day's partitions.
CREATE INDEX token_events_token_at ON token_events (token, at);
CREATE INDEX token_events_xid_id ON token_events (xid, id);

-- Rows outside every daily partition land here; the maintenance job keeps
-- daily partitions ahead of time so it normally stays empty.
CREATE TABLE token_events_default PARTITION OF token_events DEFAULT;

-- Creates the daily partitions from `from_day` through `days` days ahead.
-- +goose StatementBegin
CREATE FUNCTION token_events_ensure_partitions(from_day date, days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d date;
    created integer := 0;
    name text;
BEGIN
    FOR i IN 0..days LOOP
        d := from_day + i;
        name := 'token_events_' || to_char(d, 'YYYYMMDD');
        IF to_regclass(name) IS NULL THEN
            BEGIN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF token_events FOR VALUES FROM (%L) TO (%L)',
                    name, d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
                created := created + 1;
            EXCEPTION
                WHEN duplicate_table THEN
                    NULL; -- another pod made it first
                WHEN check_violation THEN
                    -- Rows for that day already sit in the default
                    -- partition (the upkeep job did not run in time): they
                    -- stay there, and the day has no partition of its own.
                    RAISE WARNING 'token_events: % not created, the default partition holds rows of that day', name;
            END;
        END IF;
    END LOOP;
    RETURN created;
END;
$$;
-- +goose StatementEnd

-- Drops daily partitions whose whole day lies before `before`.
-- +goose StatementBegin
CREATE FUNCTION token_events_drop_partitions(before timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'token_events'::regclass
          AND c.relname ~ '^token_events_[0-9]{8}$'
          AND (to_date(substr(c.relname, 14), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= before
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END;
$$;
-- +goose StatementEnd

SELECT token_events_ensure_partitions((now() AT TIME ZONE 'UTC')::date - 1, 8);

-- +goose Down
DROP FUNCTION token_events_drop_partitions(timestamptz);
DROP FUNCTION token_events_ensure_partitions(date, integer);
DROP TABLE token_events;
DROP TABLE token_counters;
DROP TABLE tokens;
DROP SEQUENCE lease_id_seq;
