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
-- pool's counter row of this backend change commit with the claim.
WITH pick AS MATERIALIZED (
    -- The branches run in turn until one yields a row (LIMIT 1 over the
    -- Append): the free probe from the random point, then below it, then
    -- the lapsed leases. Each returns the locked row's id and lease as they
    -- are once locked, so the row is read once here and once by the update.
    SELECT hi.id, hi.prev_lease_id, hi.prev_holder FROM (
        SELECT f.id, NULL::bigint AS prev_lease_id, NULL::text AS prev_holder FROM tokens f
        WHERE f.pool_id = sqlc.arg('pool_id')::int AND f.lease_id IS NULL
          AND f.sort_key >= sqlc.arg('probe')::float8 AND f.alive_until > now()
        ORDER BY f.sort_key LIMIT 1 FOR UPDATE SKIP LOCKED) hi
    UNION ALL
    SELECT lo.id, lo.prev_lease_id, lo.prev_holder FROM (
        SELECT f.id, NULL::bigint AS prev_lease_id, NULL::text AS prev_holder FROM tokens f
        WHERE f.pool_id = sqlc.arg('pool_id')::int AND f.lease_id IS NULL
          AND f.sort_key < sqlc.arg('probe')::float8 AND f.alive_until > now()
        ORDER BY f.sort_key LIMIT 1 FOR UPDATE SKIP LOCKED) lo
    UNION ALL
    SELECT lapsed.id, lapsed.lease_id, lapsed.holder FROM (
        SELECT l.id, l.lease_id, l.holder FROM tokens l
        WHERE l.pool_id = sqlc.arg('pool_id')::int AND l.lease_id IS NOT NULL AND l.alive_until > now()
          AND l.lease_expires_at <= LEAST(now(), COALESCE(
                  (SELECT w.lease_expires_at FROM tokens w
                    WHERE w.pool_id = sqlc.arg('pool_id')::int AND w.lease_id IS NOT NULL
                      AND w.lease_expires_at <= now()
                    ORDER BY w.lease_expires_at OFFSET 255 LIMIT 1), now()))
        ORDER BY l.lease_expires_at LIMIT 1 FOR UPDATE SKIP LOCKED) lapsed
    LIMIT 1
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
    -- The pool's counter row of this backend (slot -pid; migration 00030):
    -- no other transaction writes it meanwhile, so the claim never waits.
    UPDATE token_counters
    SET assigned = assigned + 1
    WHERE pool_id = sqlc.arg('pool_id')::int AND slot = -pg_backend_pid()
      AND EXISTS (SELECT 1 FROM claimed WHERE prev_lease_id IS NULL)
    RETURNING slot
),
counter_row AS (
    -- The backend's first count in the pool (or its first since the sweep
    -- folded its row) makes the row.
    INSERT INTO token_counters AS k (pool_id, slot, assigned)
    SELECT sqlc.arg('pool_id')::int, -pg_backend_pid(), 1
    WHERE EXISTS (SELECT 1 FROM claimed WHERE prev_lease_id IS NULL) AND NOT EXISTS (SELECT 1 FROM counted)
    ON CONFLICT (pool_id, slot) DO UPDATE SET assigned = k.assigned + EXCLUDED.assigned
)
SELECT c.value, c.lease_id::bigint AS lease_id, c.lease_expires_at::timestamptz AS lease_expires_at,
       c.alive_until, c.holder
FROM claimed c;
