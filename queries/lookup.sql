-- name: GetToken :one
-- A live token of one pool by value; a lapsed lease reads as free.
SELECT t.value, t.alive_until, t.created_at,
       (t.lease_id IS NOT NULL AND t.lease_expires_at > now())::boolean AS has_live_lease,
       t.lease_id, t.lease_expires_at, t.holder, t.lease_actor
FROM tokens t
WHERE t.pool_id = sqlc.arg('pool_id')::int AND t.value = sqlc.arg('token')::text
  AND t.alive_until > now();
