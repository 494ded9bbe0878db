-- name: ReleaseLease :one
-- Unblocks a token of one pool in one statement. The row tells the caller
-- which refusal applies when nothing was released: no row at all is
-- not_found; forbidden when the caller may release only its own leases and
-- the live lease is another actor's; has_live_lease false is not_assigned;
-- a live lease with another id is lease_mismatch. Without a lease id the
-- current lease is released. The refusals are decided on the locked row, in
-- this statement: nothing can change between the check and the write.
WITH cur AS MATERIALIZED (
    SELECT t.id, t.value, t.lease_id, t.holder,
           (t.lease_id IS NOT NULL AND t.lease_expires_at > now()) AS has_live_lease,
           (sqlc.arg('own_only')::boolean AND t.lease_id IS NOT NULL AND t.lease_expires_at > now()
            AND t.lease_actor IS DISTINCT FROM sqlc.narg('actor')::text) AS forbidden
    FROM tokens t
    WHERE t.pool_id = sqlc.arg('pool_id')::int AND t.value = sqlc.arg('token')::text
      AND t.alive_until > now()
    FOR UPDATE
),
released AS (
    UPDATE tokens t
    SET lease_id = NULL, lease_ttl = NULL, lease_expires_at = NULL, holder = NULL, lease_actor = NULL,
        sort_key = random(), version = t.version + 1
    FROM cur
    WHERE t.pool_id = sqlc.arg('pool_id')::int AND t.id = cur.id AND cur.has_live_lease AND NOT cur.forbidden
      AND (sqlc.narg('lease_id')::bigint IS NULL OR cur.lease_id = sqlc.narg('lease_id')::bigint)
    RETURNING t.id, t.version
),
audit AS (
    INSERT INTO token_log (pool_id, kind, token_id, lease_id, holder, pod_id, version, actor_id)
    SELECT sqlc.arg('pool_id')::int, 'u', cur.id, cur.lease_id, cur.holder,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.arg('pod')::text), audit_name_id(sqlc.arg('pod')::text)), r.version,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.narg('actor')::text), audit_name_id(sqlc.narg('actor')::text))
    FROM cur JOIN released r ON r.id = cur.id
),
counted AS (
    -- This backend's counter row, as in ClaimRandomFree.
    UPDATE token_counters
    SET assigned = assigned - 1
    WHERE pool_id = sqlc.arg('pool_id')::int AND slot = -pg_backend_pid()
      AND EXISTS (SELECT 1 FROM released)
    RETURNING slot
),
counter_row AS (
    INSERT INTO token_counters AS k (pool_id, slot, assigned)
    SELECT sqlc.arg('pool_id')::int, -pg_backend_pid(), -1
    WHERE EXISTS (SELECT 1 FROM released) AND NOT EXISTS (SELECT 1 FROM counted)
    ON CONFLICT (pool_id, slot) DO UPDATE SET assigned = k.assigned + EXCLUDED.assigned
)
SELECT cur.lease_id, cur.has_live_lease::boolean AS has_live_lease, cur.forbidden::boolean AS forbidden,
       EXISTS (SELECT 1 FROM released) AS released
FROM cur;

-- name: KeepAlive :one
-- Extends alive_until by the pool's keep-alive TTL; with a lease id that
-- names the live lease, also renews the lease by its own TTL. A lease id
-- that does not name the live lease changes nothing (updated is false).
-- Without a lease id the lease is left alone, so a provider's heartbeat never
-- keeps a crashed holder's lease alive. A caller that may touch only its own
-- leases changes nothing on another actor's live lease (forbidden).
WITH cur AS MATERIALIZED (
    SELECT t.id, t.value, t.lease_id, t.lease_ttl, t.holder,
           (t.lease_id IS NOT NULL AND t.lease_expires_at > now()) AS has_live_lease,
           (sqlc.arg('own_only')::boolean AND t.lease_id IS NOT NULL AND t.lease_expires_at > now()
            AND t.lease_actor IS DISTINCT FROM sqlc.narg('actor')::text) AS forbidden
    FROM tokens t
    WHERE t.pool_id = sqlc.arg('pool_id')::int AND t.value = sqlc.arg('token')::text
      AND t.alive_until > now()
    FOR UPDATE
),
-- One reading of the clock, taken once cur holds its rows' locks (reading
-- cur first orders it after them): both deadlines of a row count from it.
clk AS MATERIALIZED (
    SELECT clock_timestamp() AS at FROM cur LIMIT 1
),
kept AS (
    -- Deadlines count from clock_timestamp(), after cur's row lock was
    -- granted (it may have waited); a lease that lapsed meanwhile is not
    -- renewed.
    UPDATE tokens t
    SET alive_until = c.at + sqlc.arg('keepalive_ttl_ms')::bigint * interval '1 millisecond',
        lease_expires_at = CASE WHEN sqlc.narg('lease_id')::bigint IS NULL THEN t.lease_expires_at
                                ELSE c.at + cur.lease_ttl END,
        version = t.version + 1
    FROM cur, clk c
    WHERE t.pool_id = sqlc.arg('pool_id')::int AND t.id = cur.id AND NOT cur.forbidden
      AND (sqlc.narg('lease_id')::bigint IS NULL
           OR (t.lease_id = sqlc.narg('lease_id')::bigint AND t.lease_expires_at > c.at))
    RETURNING t.id, t.alive_until, t.lease_expires_at, t.version,
              (t.lease_id IS NOT NULL AND t.lease_expires_at > c.at) AS live
),
audit AS (
    INSERT INTO token_log (pool_id, kind, token_id, lease_id, holder, pod_id, version, actor_id)
    SELECT sqlc.arg('pool_id')::int, 'k', cur.id,
           CASE WHEN sqlc.narg('lease_id')::bigint IS NOT NULL THEN cur.lease_id END,
           CASE WHEN sqlc.narg('lease_id')::bigint IS NOT NULL THEN cur.holder END,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.arg('pod')::text), audit_name_id(sqlc.arg('pod')::text)), k.version,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.narg('actor')::text), audit_name_id(sqlc.narg('actor')::text))
    FROM cur JOIN kept k ON k.id = cur.id
)
SELECT cur.value, cur.lease_id, COALESCE(k.live, cur.has_live_lease)::boolean AS has_live_lease, cur.holder,
       cur.forbidden::boolean AS forbidden, (k.id IS NOT NULL)::boolean AS updated,
       k.alive_until, k.lease_expires_at
FROM cur LEFT JOIN kept k ON k.id = cur.id;
