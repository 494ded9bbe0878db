-- API keys: package internal/auth alone runs these (generated into db/authdb).

-- name: CreateKey :one
INSERT INTO api_keys (name, key_hash, role, pools, expires_at, rate_limit)
VALUES (
    sqlc.arg('name'), sqlc.arg('key_hash'), sqlc.arg('role'), sqlc.narg('pools')::text[],
    CASE WHEN sqlc.narg('expires_in_ms')::bigint IS NULL THEN NULL
         ELSE now() + sqlc.narg('expires_in_ms')::bigint * interval '1 millisecond' END,
    sqlc.narg('rate_limit'))
ON CONFLICT DO NOTHING
RETURNING id, name, role, pools, expires_at, rate_limit, created_at, revoked_at, last_used_at;

-- name: CreateBootstrapAdmin :one
-- The bootstrap admin, only while no usable admin key exists. Two pods
-- starting at once both pass the check; the unique name lets one win.
INSERT INTO api_keys (name, key_hash, role)
SELECT sqlc.arg('name'), sqlc.arg('key_hash'), 'admin'
WHERE NOT EXISTS (
    SELECT 1 FROM api_keys
    WHERE role = 'admin' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()))
ON CONFLICT DO NOTHING
RETURNING id;

-- name: ListKeys :many
SELECT id, name, role, pools, expires_at, rate_limit, created_at, revoked_at, last_used_at
FROM api_keys
ORDER BY name;

-- name: RevokeKey :one
UPDATE api_keys
SET revoked_at = now(), xid = pg_current_xact_id()::text::bigint
WHERE name = sqlc.arg('name') AND revoked_at IS NULL
RETURNING id, name, role, pools, expires_at, rate_limit, created_at, revoked_at, last_used_at;

-- name: KeyExists :one
SELECT EXISTS (SELECT 1 FROM api_keys WHERE name = sqlc.arg('name'));

-- name: KeysChangedSince :many
-- Every key changed by a transaction at or above the previous read's horizon
-- (0 at first: every key), with this read's horizon and the database clock
-- (one row with NULL key columns when nothing changed). A transaction that
-- commits after this statement's snapshot has an xid at or above the
-- snapshot's xmin, so the next read, from that horizon, sees its rows.
SELECT h.horizon, h.db_now,
       k.id, k.key_hash, k.name, k.role, k.pools, k.expires_at, k.rate_limit, k.revoked_at
FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon,
             now()::timestamptz AS db_now) h
LEFT JOIN api_keys k ON k.xid >= sqlc.arg('since')::bigint;

-- name: TouchKeys :exec
-- last_used_at, at most once a minute per key whatever the number of pods.
UPDATE api_keys
SET last_used_at = now()
WHERE id = ANY(sqlc.arg('ids')::bigint[])
  AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');
