-- name: SweepLapsedLeases :one
-- Tidies up to @batch_size lapsed leases, earliest first, by the lease
-- expiry index: a live token is freed (audit `released`), a dead one met on
-- the way is deleted (audit `expired`), so the batch costs its own rows
-- whatever number of dead rows hold lapsed leases.
WITH lapsed AS (
    SELECT t.id, t.value, t.lease_id, t.holder, (t.alive_until > now()) AS alive
    FROM tokens t
    WHERE t.lease_id IS NOT NULL AND t.lease_expires_at <= now()
    ORDER BY t.lease_expires_at
    LIMIT sqlc.arg('batch_size')::int
    FOR UPDATE SKIP LOCKED
),
freed AS (
    UPDATE tokens t
    SET lease_id = NULL, lease_ttl = NULL, lease_expires_at = NULL, holder = NULL,
        sort_key = random()
    FROM lapsed l
    WHERE t.id = l.id AND l.alive
    -- The audit row's fields come along here: joining lapsed to freed again
    -- would be a nested loop over two CTE scans, quadratic in the batch.
    RETURNING t.id, l.value, l.lease_id, l.holder
),
removed AS (
    DELETE FROM tokens t
    USING lapsed l
    WHERE t.id = l.id AND NOT l.alive
    RETURNING t.id, t.value, t.lease_id, t.holder
),
audit AS (
    INSERT INTO token_events (kind, token_id, token, lease_id, holder, pod)
    SELECT 'released', f.id, f.value, f.lease_id, f.holder, sqlc.arg('pod')::text FROM freed f
    UNION ALL
    SELECT 'expired', r.id, r.value, r.lease_id, r.holder, sqlc.arg('pod')::text FROM removed r
),
counted AS (
    UPDATE token_counters
    SET total = total - (SELECT count(*) FROM removed),
        assigned = assigned - (SELECT count(*) FROM freed) - (SELECT count(*) FROM removed)
    WHERE slot = sqlc.arg('slot')::smallint
)
SELECT (SELECT count(*) FROM freed)::int AS freed, (SELECT count(*) FROM removed)::int AS expired;

-- name: SweepDeadTokens :one
-- Deletes up to @batch_size tokens whose alive_until has passed, earliest
-- first, by the alive_until index. Writes an `expired` audit row per token.
WITH dead AS (
    SELECT t.id
    FROM tokens t
    WHERE t.alive_until <= now()
    ORDER BY t.alive_until
    LIMIT sqlc.arg('batch_size')::int
    FOR UPDATE SKIP LOCKED
),
removed AS (
    DELETE FROM tokens t
    USING dead d
    WHERE t.id = d.id
    RETURNING t.id, t.value, t.lease_id, t.holder
),
audit AS (
    INSERT INTO token_events (kind, token_id, token, lease_id, holder, pod)
    SELECT 'expired', id, value, lease_id, holder, sqlc.arg('pod')::text FROM removed
),
counted AS (
    UPDATE token_counters
    SET total = total - (SELECT count(*) FROM removed),
        assigned = assigned - (SELECT count(*) FROM removed WHERE lease_id IS NOT NULL)
    WHERE slot = sqlc.arg('slot')::smallint
)
SELECT count(*)::int AS removed FROM removed;
