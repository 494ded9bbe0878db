-- name: SweepLapsedLeases :one
-- Frees up to @batch_size lapsed leases of live tokens of one pool, earliest
-- first, by the pool's lease expiry index. Writes a `released` audit row per
-- lease (no actor: nobody released it).
WITH lapsed AS (
    SELECT t.id, t.value, t.lease_id, t.holder
    FROM tokens t
    WHERE t.pool_id = sqlc.arg('pool_id')::int AND t.lease_id IS NOT NULL
      AND t.lease_expires_at <= now() AND t.alive_until > now()
    ORDER BY t.lease_expires_at
    LIMIT sqlc.arg('batch_size')::int
    FOR UPDATE SKIP LOCKED
),
freed AS (
    UPDATE tokens t
    SET lease_id = NULL, lease_ttl = NULL, lease_expires_at = NULL, holder = NULL, lease_actor = NULL,
        sort_key = random(), version = t.version + 1
    FROM lapsed l
    WHERE t.pool_id = sqlc.arg('pool_id')::int AND t.id = l.id
    -- The audit row's fields come along here: joining lapsed to freed again
    -- would be a nested loop over two CTE scans, quadratic in the batch.
    RETURNING t.id, l.value, l.lease_id, l.holder, t.version
),
audit AS (
    INSERT INTO token_events (pool_id, kind, token_id, token, lease_id, holder, pod, version)
    SELECT sqlc.arg('pool_id')::int, 'released', f.id, f.value, f.lease_id, f.holder, sqlc.arg('pod')::text, f.version
    FROM freed f
),
counted AS (
    UPDATE token_counters
    SET assigned = assigned - (SELECT count(*) FROM freed)
    WHERE pool_id = sqlc.arg('pool_id')::int AND slot = sqlc.arg('slot')::smallint
)
SELECT count(*)::int AS freed FROM freed;

-- name: SweepDeadTokens :one
-- Deletes up to @batch_size tokens of one pool whose alive_until has passed,
-- earliest first, by the pool's alive_until index. Writes an `expired` audit
-- row per token.
WITH dead AS (
    SELECT t.id
    FROM tokens t
    WHERE t.pool_id = sqlc.arg('pool_id')::int AND t.alive_until <= now()
    ORDER BY t.alive_until
    LIMIT sqlc.arg('batch_size')::int
    FOR UPDATE SKIP LOCKED
),
removed AS (
    DELETE FROM tokens t
    USING dead d
    WHERE t.pool_id = sqlc.arg('pool_id')::int AND t.id = d.id
    RETURNING t.id, t.value, t.lease_id, t.holder, t.version
),
audit AS (
    INSERT INTO token_events (pool_id, kind, token_id, token, lease_id, holder, pod, version)
    SELECT sqlc.arg('pool_id')::int, 'expired', id, value, lease_id, holder, sqlc.arg('pod')::text, version + 1
    FROM removed
),
counted AS (
    UPDATE token_counters
    SET total = total - (SELECT count(*) FROM removed),
        assigned = assigned - (SELECT count(*) FROM removed WHERE lease_id IS NOT NULL)
    WHERE pool_id = sqlc.arg('pool_id')::int AND slot = sqlc.arg('slot')::smallint
)
SELECT count(*)::int AS removed FROM removed;

-- name: SweptPools :many
-- The live pools, for the sweeps, which run per pool (a sweep statement
-- never reads two pools' rows).
SELECT id FROM pools WHERE deleted_at IS NULL ORDER BY id;

-- name: EnsureEventPartitions :one
SELECT token_events_ensure_partitions((now() AT TIME ZONE 'UTC')::date, sqlc.arg('days_ahead')::int)::int AS created;

-- name: DropEventPartitions :one
SELECT token_events_drop_partitions(now() - sqlc.arg('retention_ms')::bigint * interval '1 millisecond')::int AS dropped;
