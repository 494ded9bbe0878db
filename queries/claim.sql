-- name: ClaimRandomFree :one
-- Assigns one random free, live token of one pool in one statement. The
-- probe starts at a random point of the pool's free index and wraps around;
-- when no token is free it takes the pool's oldest lapsed lease (exactness:
-- a lapsed lease frees its token at once, sweep or no sweep), among the
-- pool's 256 earliest lapsed leases as in ClaimBatch. The lease runs from
-- clock_timestamp(), as in ClaimBatch. Each branch
-- locks with SKIP LOCKED, so concurrent claimers never wait for or share a
-- row. Every branch and write names the pool, which leads every index it
-- uses: another pool's rows are never read. The audit rows (with the
-- token's version after each change, and the caller as actor) and the
-- pool's counter slot change commit with the claim.
WITH pick AS MATERIALIZED (
    SELECT t.id, t.lease_id AS prev_lease_id, t.holder AS prev_holder
    FROM tokens t
    WHERE t.pool_id = sqlc.arg('pool_id')::int AND t.id = COALESCE(
        (SELECT f.id FROM tokens f
          WHERE f.pool_id = sqlc.arg('pool_id')::int AND f.lease_id IS NULL
            AND f.sort_key >= sqlc.arg('probe')::float8 AND f.alive_until > now()
          ORDER BY f.sort_key LIMIT 1 FOR UPDATE SKIP LOCKED),
        (SELECT f.id FROM tokens f
          WHERE f.pool_id = sqlc.arg('pool_id')::int AND f.lease_id IS NULL
            AND f.sort_key < sqlc.arg('probe')::float8 AND f.alive_until > now()
          ORDER BY f.sort_key LIMIT 1 FOR UPDATE SKIP LOCKED),
        (SELECT l.id FROM tokens l
          WHERE l.pool_id = sqlc.arg('pool_id')::int AND l.lease_id IS NOT NULL AND l.alive_until > now()
            AND l.lease_expires_at <= LEAST(now(), COALESCE(
                      (SELECT w.lease_expires_at FROM tokens w
                        WHERE w.pool_id = sqlc.arg('pool_id')::int AND w.lease_id IS NOT NULL
                          AND w.lease_expires_at <= now()
                        ORDER BY w.lease_expires_at OFFSET 255 LIMIT 1), now()))
          ORDER BY l.lease_expires_at LIMIT 1 FOR UPDATE SKIP LOCKED))
),
claimed AS (
    UPDATE tokens t
    SET lease_id = nextval('lease_id_seq'),
        lease_ttl = sqlc.arg('lease_ttl_ms')::bigint * interval '1 millisecond',
        lease_expires_at = clock_timestamp() + sqlc.arg('lease_ttl_ms')::bigint * interval '1 millisecond',
        holder = sqlc.narg('holder')::text,
        lease_actor = sqlc.narg('actor')::text,
        -- A lapsed lease ends first (released), then the new one starts.
        version = t.version + CASE WHEN pick.prev_lease_id IS NULL THEN 1 ELSE 2 END
    FROM pick
    WHERE t.pool_id = sqlc.arg('pool_id')::int AND t.id = pick.id
    RETURNING t.id, t.value, t.lease_id, t.lease_expires_at, t.alive_until, t.holder, t.version,
              pick.prev_lease_id, pick.prev_holder
),
audit AS (
    INSERT INTO token_log (pool_id, kind, token_id, lease_id, holder, pod_id, version, actor_id)
    SELECT sqlc.arg('pool_id')::int, 'r', c.id, c.prev_lease_id, c.prev_holder,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.arg('pod')::text), audit_name_id(sqlc.arg('pod')::text)), c.version - 1, NULL
      FROM claimed c WHERE c.prev_lease_id IS NOT NULL
    UNION ALL
    SELECT sqlc.arg('pool_id')::int, 'a', c.id, c.lease_id, c.holder,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.arg('pod')::text), audit_name_id(sqlc.arg('pod')::text)), c.version,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.narg('actor')::text), audit_name_id(sqlc.narg('actor')::text))
      FROM claimed c
),
counted AS (
    UPDATE token_counters
    SET assigned = assigned + 1
    WHERE pool_id = sqlc.arg('pool_id')::int AND slot = sqlc.arg('slot')::smallint
      AND EXISTS (SELECT 1 FROM claimed WHERE prev_lease_id IS NULL)
)
SELECT c.value, c.lease_id::bigint AS lease_id, c.lease_expires_at::timestamptz AS lease_expires_at,
       c.alive_until, c.holder
FROM claimed c;
