-- Pools: their settings (NULL = the environment's value) and their counts.

-- name: PutPool :one
-- Creates the live pool of that name, or replaces its settings; created
-- tells which. A new pool gets its fixed counter slots in the same statement.
WITH p AS (
    INSERT INTO pools AS p (name, lease_ttl_ms, keepalive_ttl_ms, max_lease_ttl_ms, max_tokens)
    VALUES (sqlc.arg('name')::text, sqlc.narg('lease_ttl_ms')::bigint, sqlc.narg('keepalive_ttl_ms')::bigint,
            sqlc.narg('max_lease_ttl_ms')::bigint, sqlc.narg('max_tokens')::bigint)
    ON CONFLICT (name) WHERE deleted_at IS NULL DO UPDATE
    SET lease_ttl_ms = EXCLUDED.lease_ttl_ms, keepalive_ttl_ms = EXCLUDED.keepalive_ttl_ms,
        max_lease_ttl_ms = EXCLUDED.max_lease_ttl_ms, max_tokens = EXCLUDED.max_tokens,
        updated_at = now()
    RETURNING p.id, p.name, p.lease_ttl_ms, p.keepalive_ttl_ms, p.max_lease_ttl_ms, p.max_tokens,
              (p.xmax = 0) AS created
),
slots AS (
    INSERT INTO token_counters (pool_id, slot)
    SELECT p.id, s.slot FROM p, generate_series(0, sqlc.arg('slots')::int - 1) AS s(slot)
    WHERE p.created
    ON CONFLICT DO NOTHING
)
SELECT p.id, p.name, p.lease_ttl_ms, p.keepalive_ttl_ms, p.max_lease_ttl_ms, p.max_tokens,
       p.created::boolean AS created
FROM p;

-- name: GetPool :one
-- A live pool by name.
SELECT id, name, lease_ttl_ms, keepalive_ttl_ms, max_lease_ttl_ms, max_tokens
FROM pools
WHERE name = sqlc.arg('name')::text AND deleted_at IS NULL;

-- name: ListPools :many
-- Every live pool with its counts, by name. Reads every pool's counter slots:
-- an operator's call, not a hot one.
SELECT p.id, p.name, p.lease_ttl_ms, p.keepalive_ttl_ms, p.max_lease_ttl_ms, p.max_tokens,
       COALESCE(c.total, 0)::bigint AS total, COALESCE(c.assigned, 0)::bigint AS assigned
FROM pools p
LEFT JOIN (SELECT pool_id, sum(total) AS total, sum(assigned) AS assigned
           FROM token_counters GROUP BY pool_id) c ON c.pool_id = p.id
WHERE p.deleted_at IS NULL
ORDER BY p.name;

-- name: LockPoolForDelete :one
-- Locks a live pool against concurrent growth (generate and import take the
-- row FOR SHARE) and says whether it still holds a live token.
SELECT p.id,
       EXISTS (SELECT 1 FROM tokens t
               WHERE t.pool_id = p.id AND t.alive_until > now())::boolean AS has_live_tokens
FROM pools p
WHERE p.name = sqlc.arg('name')::text AND p.deleted_at IS NULL
FOR UPDATE OF p;

-- name: MarkPoolDeleted :exec
-- Retires a pool that holds no live token; its counter slots go with it.
WITH slots AS (
    DELETE FROM token_counters WHERE pool_id = sqlc.arg('pool_id')::int
)
UPDATE pools SET deleted_at = now(), updated_at = now()
WHERE id = sqlc.arg('pool_id')::int;

-- name: PoolCounts :one
-- Sums one pool's counter rows (fixed slots and one per backend that wrote,
-- folded by the sweep): constant cost whatever the pool's size.
SELECT COALESCE(sum(total), 0)::bigint AS total, COALESCE(sum(assigned), 0)::bigint AS assigned
FROM token_counters
WHERE pool_id = sqlc.arg('pool_id')::int;

-- name: RemovePoolDeadTokens :one
-- Removes every dead token of a pool that is being deleted (audit
-- `expired`), so that none outlives its pool. The pool's row is locked, so
-- nothing is added meanwhile.
WITH removed AS (
    DELETE FROM tokens t
    WHERE t.pool_id = sqlc.arg('pool_id')::int AND t.alive_until <= now()
    RETURNING t.id, t.value, t.lease_id, t.holder, t.version
),
audit AS (
    INSERT INTO token_log (pool_id, kind, token_id, token, lease_id, holder, pod_id, version)
    SELECT sqlc.arg('pool_id')::int, 'e', id, value, lease_id, holder, COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.arg('pod')::text), audit_name_id(sqlc.arg('pod')::text)), version + 1
    FROM removed
)
SELECT count(*)::int AS removed FROM removed;

-- name: RegisterAuditName :exec
-- Adds a pod's name to the audit log's dictionary (migration 00031) in a
-- transaction of its own, at start-up: a name that a hot statement adds on
-- first use makes concurrent statements that need it wait for that
-- statement's transaction.
SELECT audit_name_id(sqlc.arg('name')::text);
