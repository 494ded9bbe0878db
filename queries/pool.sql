-- name: LockPoolSize :exec
-- Serialises the statements that grow the pool, so MAX_TOKENS holds under
-- concurrent generate and import calls. Claims never take this lock.
SELECT pg_advisory_xact_lock(7245001);

-- name: LiveValues :many
-- Which of the values are held by a row, and whether that row is still
-- alive: a plain MVCC read of the value index, which never waits for the row
-- locks of claims, releases or keep-alives. Growth decides from it what to
-- insert, so that its inserts meet no existing row (see Import).
SELECT t.value, (t.alive_until > now())::boolean AS alive
FROM tokens t
WHERE t.value = ANY(sqlc.arg('tokens')::text[]);

-- name: InsertTokens :many
-- Inserts new tokens in value order (two growths never lock index entries in
-- opposite orders) and counts them on the caller's counter slot. Callers pass
-- only values no row holds, so ON CONFLICT is a backstop: it would wait for a
-- conflicting row's locker, which is why Import reads first.
WITH ins AS (
    INSERT INTO tokens (value, imported, alive_until)
    SELECT v, sqlc.arg('imported')::boolean, now() + sqlc.arg('keepalive_ttl_ms')::bigint * interval '1 millisecond'
    FROM unnest(sqlc.arg('tokens')::text[]) AS v
    ORDER BY v
    ON CONFLICT (value) DO NOTHING
    RETURNING id, value
),
audit AS (
    INSERT INTO token_events (kind, token_id, token, pod)
    SELECT CASE WHEN sqlc.arg('imported')::boolean THEN 'imported' ELSE 'generated' END, id, value, sqlc.arg('pod')::text
    FROM ins
),
counted AS (
    UPDATE token_counters
    SET total = total + (SELECT count(*) FROM ins)
    WHERE slot = sqlc.arg('slot')::smallint AND EXISTS (SELECT 1 FROM ins)
)
SELECT value FROM ins;

-- name: RemoveDeadByValue :exec
-- Makes room to import a value again whose token has died but is not swept
-- yet. Dead rows are never locked by the hot path (every hot statement
-- filters on alive_until before it locks), and the counter slot is touched
-- only when a row was deleted.
WITH dead AS (
    DELETE FROM tokens
    WHERE value = ANY(sqlc.arg('tokens')::text[]) AND alive_until <= now()
    RETURNING id, value, lease_id, holder
),
audit AS (
    INSERT INTO token_events (kind, token_id, token, lease_id, holder, pod)
    SELECT 'expired', id, value, lease_id, holder, sqlc.arg('pod')::text FROM dead
)
UPDATE token_counters
SET total = total - (SELECT count(*) FROM dead),
    assigned = assigned - (SELECT count(*) FROM dead WHERE lease_id IS NOT NULL)
WHERE slot = sqlc.arg('slot')::smallint AND EXISTS (SELECT 1 FROM dead);

-- name: DeleteToken :one
-- Deletes a live token, whatever its lease.
WITH del AS (
    DELETE FROM tokens
    WHERE value = sqlc.arg('token')::text AND alive_until > now()
    RETURNING id, value, lease_id, holder
),
audit AS (
    INSERT INTO token_events (kind, token_id, token, lease_id, holder, pod)
    SELECT 'deleted', id, value, lease_id, holder, sqlc.arg('pod')::text FROM del
),
counted AS (
    UPDATE token_counters
    SET total = total - 1,
        assigned = assigned - (SELECT count(*) FROM del WHERE lease_id IS NOT NULL)
    WHERE slot = sqlc.arg('slot')::smallint AND EXISTS (SELECT 1 FROM del)
)
SELECT value FROM del;
