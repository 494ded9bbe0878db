-- name: ClaimRandomFree :one
-- Assigns one random free, live token in one statement. The probe starts at a
-- random point of the free index and wraps around; when no token is free it
-- takes the oldest lapsed lease (exactness: a lapsed lease frees its token at
-- once, sweep or no sweep), among the 256 earliest lapsed leases as in
-- ClaimBatch. Each branch locks with SKIP LOCKED, so concurrent
-- claimers never wait for or share a row. The audit rows and the stats counter
-- change commit with the claim.
WITH pick AS MATERIALIZED (
    SELECT t.id, t.lease_id AS prev_lease_id, t.holder AS prev_holder
    FROM tokens t
    WHERE t.id = COALESCE(
        (SELECT f.id FROM tokens f
          WHERE f.lease_id IS NULL AND f.sort_key >= sqlc.arg('probe')::float8 AND f.alive_until > now()
          ORDER BY f.sort_key LIMIT 1 FOR UPDATE SKIP LOCKED),
        (SELECT f.id FROM tokens f
          WHERE f.lease_id IS NULL AND f.sort_key < sqlc.arg('probe')::float8 AND f.alive_until > now()
          ORDER BY f.sort_key LIMIT 1 FOR UPDATE SKIP LOCKED),
        (SELECT l.id FROM tokens l
          WHERE l.lease_id IS NOT NULL AND l.alive_until > now()
            AND l.lease_expires_at <= LEAST(now(), COALESCE(
                      (SELECT w.lease_expires_at FROM tokens w
                        WHERE w.lease_id IS NOT NULL AND w.lease_expires_at <= now()
                        ORDER BY w.lease_expires_at OFFSET 255 LIMIT 1), now()))
          ORDER BY l.lease_expires_at LIMIT 1 FOR UPDATE SKIP LOCKED))
),
claimed AS (
    UPDATE tokens t
    SET lease_id = nextval('lease_id_seq'),
        lease_ttl = sqlc.arg('lease_ttl_ms')::bigint * interval '1 millisecond',
        lease_expires_at = clock_timestamp() + sqlc.arg('lease_ttl_ms')::bigint * interval '1 millisecond',
        holder = sqlc.narg('holder')::text
    FROM pick
    WHERE t.id = pick.id
    RETURNING t.id, t.value, t.lease_id, t.lease_expires_at, t.alive_until, t.holder,
              pick.prev_lease_id, pick.prev_holder
),
audit AS (
    INSERT INTO token_events (kind, token_id, token, lease_id, holder, pod)
    SELECT 'released', c.id, c.value, c.prev_lease_id, c.prev_holder, sqlc.arg('pod')::text
      FROM claimed c WHERE c.prev_lease_id IS NOT NULL
    UNION ALL
    SELECT 'assigned', c.id, c.value, c.lease_id, c.holder, sqlc.arg('pod')::text FROM claimed c
),
counted AS (
    UPDATE token_counters
    SET assigned = assigned + 1
    WHERE slot = sqlc.arg('slot')::smallint AND EXISTS (SELECT 1 FROM claimed WHERE prev_lease_id IS NULL)
)
SELECT c.value, c.lease_id::bigint AS lease_id, c.lease_expires_at::timestamptz AS lease_expires_at,
       c.alive_until, c.holder
FROM claimed c;
