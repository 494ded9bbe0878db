-- name: GetToken :one
-- A live token by value; a lapsed lease reads as free.
SELECT t.value, t.alive_until, t.created_at,
       (t.lease_id IS NOT NULL AND t.lease_expires_at > now())::boolean AS has_live_lease,
       t.lease_id, t.lease_expires_at, t.holder
FROM tokens t
WHERE t.value = sqlc.arg('token')::text AND t.alive_until > now();

-- name: PoolStats :one
-- Sums the counter slots: constant cost whatever the pool size.
SELECT COALESCE(sum(total), 0)::bigint AS total, COALESCE(sum(assigned), 0)::bigint AS assigned
FROM token_counters;
