-- name: ReleaseLease :one
-- Unblocks a token in one statement. The row tells the caller which refusal
-- applies when nothing was released: no row at all is not_found; a row with
-- has_live_lease false is not_assigned; a live lease with another id is
-- lease_mismatch. Without a lease id the current lease is released.
WITH cur AS MATERIALIZED (
    SELECT t.id, t.value, t.lease_id, t.holder,
           (t.lease_id IS NOT NULL AND t.lease_expires_at > now()) AS has_live_lease
    FROM tokens t
    WHERE t.value = sqlc.arg('token')::text AND t.alive_until > now()
    FOR UPDATE
),
released AS (
    UPDATE tokens t
    SET lease_id = NULL, lease_ttl = NULL, lease_expires_at = NULL, holder = NULL,
        sort_key = random()
    FROM cur
    WHERE t.id = cur.id AND cur.has_live_lease
      AND (sqlc.narg('lease_id')::bigint IS NULL OR cur.lease_id = sqlc.narg('lease_id')::bigint)
    RETURNING t.id
),
audit AS (
    INSERT INTO token_events (kind, token_id, token, lease_id, holder, pod)
    SELECT 'unblocked', cur.id, cur.value, cur.lease_id, cur.holder, sqlc.arg('pod')::text
    FROM cur JOIN released r ON r.id = cur.id
),
counted AS (
    UPDATE token_counters
    SET assigned = assigned - 1
    WHERE slot = sqlc.arg('slot')::smallint AND EXISTS (SELECT 1 FROM released)
)
SELECT cur.lease_id, cur.has_live_lease::boolean AS has_live_lease,
       EXISTS (SELECT 1 FROM released) AS released
FROM cur;

-- name: KeepAlive :one
-- Extends alive_until; with a lease id that names the live lease, also renews
-- the lease by its own TTL. A lease id that does not name the live lease
-- changes nothing (updated is false). Without a lease id the lease is left
-- alone, so a provider's heartbeat never keeps a crashed holder's lease alive.
WITH cur AS MATERIALIZED (
    SELECT t.id, t.value, t.lease_id, t.lease_ttl, t.holder,
           (t.lease_id IS NOT NULL AND t.lease_expires_at > now()) AS has_live_lease
    FROM tokens t
    WHERE t.value = sqlc.arg('token')::text AND t.alive_until > now()
    FOR UPDATE
),
kept AS (
    -- Deadlines count from clock_timestamp(), after cur's row lock was
    -- granted (it may have waited); a lease that lapsed meanwhile is not
    -- renewed.
    UPDATE tokens t
    SET alive_until = clock_timestamp() + sqlc.arg('keepalive_ttl_ms')::bigint * interval '1 millisecond',
        lease_expires_at = CASE WHEN sqlc.narg('lease_id')::bigint IS NULL THEN t.lease_expires_at
                                ELSE clock_timestamp() + cur.lease_ttl END
    FROM cur
    WHERE t.id = cur.id
      AND (sqlc.narg('lease_id')::bigint IS NULL
           OR (t.lease_id = sqlc.narg('lease_id')::bigint AND t.lease_expires_at > clock_timestamp()))
    RETURNING t.id, t.alive_until, t.lease_expires_at,
              (t.lease_id IS NOT NULL AND t.lease_expires_at > clock_timestamp()) AS live
),
audit AS (
    INSERT INTO token_events (kind, token_id, token, lease_id, holder, pod)
    SELECT 'kept_alive', cur.id, cur.value,
           CASE WHEN sqlc.narg('lease_id')::bigint IS NOT NULL THEN cur.lease_id END,
           CASE WHEN sqlc.narg('lease_id')::bigint IS NOT NULL THEN cur.holder END,
           sqlc.arg('pod')::text
    FROM cur JOIN kept k ON k.id = cur.id
)
SELECT cur.value, cur.lease_id, COALESCE(k.live, cur.has_live_lease)::boolean AS has_live_lease, cur.holder,
       (k.id IS NOT NULL)::boolean AS updated,
       k.alive_until, k.lease_expires_at
FROM cur LEFT JOIN kept k ON k.id = cur.id;
