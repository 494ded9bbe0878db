-- name: LockPoolSize :one
-- Serialises the statements that grow one pool, so its max_tokens holds
-- under concurrent generate and import calls, and holds the pool's row
-- against deletion until the growth commits. No row: the pool is gone.
-- Claims never take this lock.
SELECT p.id, pg_advisory_xact_lock(7245001, p.id) IS NOT NULL AS locked
FROM pools p
WHERE p.id = sqlc.arg('pool_id')::int AND p.deleted_at IS NULL
FOR SHARE;

-- name: LiveValues :many
-- Which of the values are held by a row of the pool, and whether that row is
-- still alive: a plain MVCC read of the pool's value index, which never
-- waits for the row locks of claims, releases or keep-alives. Growth decides
-- from it what to insert, so that its inserts meet no existing row (see
-- Import).
SELECT t.value, (t.alive_until > now())::boolean AS alive
FROM tokens t
WHERE t.pool_id = sqlc.arg('pool_id')::int AND t.value = ANY(sqlc.arg('tokens')::text[]);

-- name: InsertTokens :many
-- Inserts new tokens into one pool in value order (two growths never lock
-- index entries in opposite orders) and counts them on the caller's counter
-- slot. Callers pass only values no row of the pool holds, so ON CONFLICT is
-- a backstop: it would wait for a conflicting row's locker, which is why
-- Import reads first.
WITH ins AS (
    INSERT INTO tokens (pool_id, value, imported, alive_until)
    SELECT sqlc.arg('pool_id')::int, v, sqlc.arg('imported')::boolean,
           now() + sqlc.arg('keepalive_ttl_ms')::bigint * interval '1 millisecond'
    FROM unnest(sqlc.arg('tokens')::text[]) AS v
    ORDER BY v
    ON CONFLICT (pool_id, value) DO NOTHING
    RETURNING id, value, version
),
audit AS (
    INSERT INTO token_log (pool_id, kind, token_id, token, pod_id, version, actor_id)
    SELECT sqlc.arg('pool_id')::int, CASE WHEN sqlc.arg('imported')::boolean THEN 'i' ELSE 'g' END::"char",
           id, value, COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.arg('pod')::text), audit_name_id(sqlc.arg('pod')::text)), version,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.narg('actor')::text), audit_name_id(sqlc.narg('actor')::text))
    FROM ins
),
counted AS (
    UPDATE token_counters
    SET total = total + (SELECT count(*) FROM ins)
    WHERE pool_id = sqlc.arg('pool_id')::int AND slot = sqlc.arg('slot')::smallint AND EXISTS (SELECT 1 FROM ins)
)
SELECT value FROM ins;

-- name: RemoveDeadByValue :exec
-- Makes room to import a value again whose token has died but is not swept
-- yet. Dead rows are never locked by the hot path (every hot statement
-- filters on alive_until before it locks), and the counter slot is touched
-- only when a row was deleted.
WITH dead AS (
    DELETE FROM tokens
    WHERE pool_id = sqlc.arg('pool_id')::int AND value = ANY(sqlc.arg('tokens')::text[]) AND alive_until <= now()
    RETURNING id, value, lease_id, holder, version
),
audit AS (
    INSERT INTO token_log (pool_id, kind, token_id, token, lease_id, holder, pod_id, version)
    SELECT sqlc.arg('pool_id')::int, 'e', id, value, lease_id, holder, COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.arg('pod')::text), audit_name_id(sqlc.arg('pod')::text)), version + 1
    FROM dead
)
UPDATE token_counters
SET total = total - (SELECT count(*) FROM dead),
    assigned = assigned - (SELECT count(*) FROM dead WHERE lease_id IS NOT NULL)
WHERE pool_id = sqlc.arg('pool_id')::int AND slot = sqlc.arg('slot')::smallint AND EXISTS (SELECT 1 FROM dead);

-- name: DeleteToken :one
-- Deletes a live token of one pool, whatever its lease.
WITH del AS (
    DELETE FROM tokens
    WHERE pool_id = sqlc.arg('pool_id')::int AND value = sqlc.arg('token')::text AND alive_until > now()
    RETURNING id, value, lease_id, holder, version
),
audit AS (
    INSERT INTO token_log (pool_id, kind, token_id, token, lease_id, holder, pod_id, version, actor_id)
    SELECT sqlc.arg('pool_id')::int, 'd', id, value, lease_id, holder, COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.arg('pod')::text), audit_name_id(sqlc.arg('pod')::text)),
           version + 1, COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.narg('actor')::text), audit_name_id(sqlc.narg('actor')::text))
    FROM del
),
counted AS (
    -- This backend's counter row, as in ClaimRandomFree.
    UPDATE token_counters
    SET total = total - 1,
        assigned = assigned - (SELECT count(*) FROM del WHERE lease_id IS NOT NULL)
    WHERE pool_id = sqlc.arg('pool_id')::int AND slot = -pg_backend_pid()
      AND EXISTS (SELECT 1 FROM del)
    RETURNING slot
),
counter_row AS (
    INSERT INTO token_counters AS k (pool_id, slot, total, assigned)
    SELECT sqlc.arg('pool_id')::int, -pg_backend_pid(), -1, -count(*) FILTER (WHERE lease_id IS NOT NULL)
    FROM del
    HAVING count(*) > 0 AND NOT EXISTS (SELECT 1 FROM counted)
    ON CONFLICT (pool_id, slot) DO UPDATE SET total = k.total + EXCLUDED.total, assigned = k.assigned + EXCLUDED.assigned
)
SELECT value FROM del;
