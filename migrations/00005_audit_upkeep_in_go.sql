-- +goose Up

-- The audit partition upkeep moves to Go (tokens.MaintainEventPartitions):
-- these functions ran every partition's DDL in one transaction, without a
-- lock timeout, so that a DROP or CREATE ... PARTITION OF queued behind any
-- open reader of token_events, and every write of the hot path queued behind
-- it. Pods of an older version call them hourly: they then log an error and
-- do nothing, which is safe.
DROP FUNCTION IF EXISTS token_events_drop_partitions(timestamptz);
DROP FUNCTION IF EXISTS token_events_ensure_partitions(date, integer);

-- +goose Down
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
                WHEN duplicate_table THEN NULL;
                WHEN check_violation THEN
                    RAISE WARNING 'token_events: % not created, the default partition holds rows of that day', name;
            END;
        END IF;
    END LOOP;
    RETURN created;
END;
$$;
-- +goose StatementEnd
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
