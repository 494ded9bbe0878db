-- name: LockPoolSize :exec
-- Serialises the statements that grow the pool, so MAX_TOKENS holds under
-- concurrent generate and import calls. Claims never take this lock.
SELECT pg_advisory_xact_lock(7245001);

-- name: InsertTokens :many
-- Inserts new tokens; values already present are skipped and not returned.
WITH ins AS (
    INSERT INTO tokens (value, imported, alive_until)
    SELECT v, sqlc.arg('imported')::boolean, now() + sqlc.arg('keepalive_ttl_ms')::bigint * interval '1 millisecond'
    FROM unnest(sqlc.arg('tokens')::text[]) AS v
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
    WHERE slot = sqlc.arg('slot')::smallint
)
SELECT value FROM ins;

-- name: RemoveDeadByValue :exec
-- Makes room to import a value again whose token has died but is not swept yet.
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
WHERE slot = sqlc.arg('slot')::smallint;

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
