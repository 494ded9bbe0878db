-- name: SweepLapsedLeases :one
-- Tidies up to @batch_size lapsed leases of one pool, earliest first, by the
-- pool's lease expiry index: a live token is freed (audit `released`, no
-- actor: nobody released it), a dead one met on the way is deleted (audit
-- `expired`), so the batch costs its own rows whatever number of dead rows
-- hold lapsed leases.
WITH lapsed AS (
    SELECT t.id, t.value, t.lease_id, t.holder, t.version, (t.alive_until > now()) AS alive
    FROM tokens t
    WHERE t.pool_id = sqlc.arg('pool_id')::int AND t.lease_id IS NOT NULL AND t.lease_expires_at <= now()
    ORDER BY t.lease_expires_at
    LIMIT sqlc.arg('batch_size')::int
    FOR UPDATE SKIP LOCKED
),
freed AS (
    UPDATE tokens t
    SET lease_id = NULL, lease_ttl = NULL, lease_expires_at = NULL, holder = NULL, lease_actor = NULL,
        sort_key = random(), version = t.version + 1
    FROM lapsed l
    WHERE t.pool_id = sqlc.arg('pool_id')::int AND t.id = l.id AND l.alive
    -- The audit row's fields come along here: joining lapsed to freed again
    -- would be a nested loop over two CTE scans, quadratic in the batch.
    RETURNING t.id, l.value, l.lease_id, l.holder, t.version
),
removed AS (
    DELETE FROM tokens t
    USING lapsed l
    WHERE t.pool_id = sqlc.arg('pool_id')::int AND t.id = l.id AND NOT l.alive
    RETURNING t.id, t.value, t.lease_id, t.holder, t.version
),
audit AS (
    INSERT INTO token_log (pool_id, kind, token_id, token, lease_id, holder, pod_id, version)
    SELECT sqlc.arg('pool_id')::int, 'r', f.id, NULL, f.lease_id, f.holder, COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.arg('pod')::text), audit_name_id(sqlc.arg('pod')::text)), f.version
    FROM freed f
    UNION ALL
    SELECT sqlc.arg('pool_id')::int, 'e', r.id, r.value, r.lease_id, r.holder, COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.arg('pod')::text), audit_name_id(sqlc.arg('pod')::text)), r.version + 1
    FROM removed r
),
counted AS (
    UPDATE token_counters
    SET total = total - (SELECT count(*) FROM removed),
        assigned = assigned - (SELECT count(*) FROM freed) - (SELECT count(*) FROM removed)
    WHERE pool_id = sqlc.arg('pool_id')::int AND slot = sqlc.arg('slot')::smallint
)
SELECT (SELECT count(*) FROM freed)::int AS freed, (SELECT count(*) FROM removed)::int AS expired;

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
    INSERT INTO token_log (pool_id, kind, token_id, token, lease_id, holder, pod_id, version)
    SELECT sqlc.arg('pool_id')::int, 'e', id, value, lease_id, holder, COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.arg('pod')::text), audit_name_id(sqlc.arg('pod')::text)), version + 1
    FROM removed
),
counted AS (
    UPDATE token_counters
    SET total = total - (SELECT count(*) FROM removed),
        assigned = assigned - (SELECT count(*) FROM removed WHERE lease_id IS NOT NULL)
    WHERE pool_id = sqlc.arg('pool_id')::int AND slot = sqlc.arg('slot')::smallint
)
SELECT count(*)::int AS removed FROM removed;

-- name: FoldCounterRows :one
-- Folds the counter rows of backends that have exited (slot -pid with no
-- such backend left; migration 00030) into the sweeps' row of their pool
-- (@slot), so that a pool keeps about one row per live connection. A count
-- moves in one statement, never lost or counted twice: a backend that
-- starts meanwhile under a folded row's pid either writes the row before
-- the fold deletes it (its count goes along: the delete returns the row's
-- last version) or finds it gone and makes a new one.
WITH gone AS (
    DELETE FROM token_counters c
    WHERE c.slot < 0
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid = -c.slot)
    RETURNING c.pool_id, c.total, c.assigned
),
folded AS (
    INSERT INTO token_counters AS k (pool_id, slot, total, assigned)
    SELECT g.pool_id, sqlc.arg('slot')::smallint, sum(g.total), sum(g.assigned)
    FROM gone g
    GROUP BY g.pool_id
    ON CONFLICT (pool_id, slot) DO UPDATE
    SET total = k.total + EXCLUDED.total, assigned = k.assigned + EXCLUDED.assigned
)
SELECT count(*)::int AS folded FROM gone;

-- name: SweptPools :many
-- The live pools, for the sweeps, which run per pool (a sweep statement
-- never reads two pools' rows).
SELECT id, name FROM pools WHERE deleted_at IS NULL ORDER BY id;
