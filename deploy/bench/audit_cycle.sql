-- Audit-volume probe, for pgbench -M prepared -f (deploy/bench/auditbytes.sh).
-- One cycle = assign (queries/claim.sql, ClaimRandomFree), keep-alive with
-- the lease id (queries/lease.sql, KeepAlive) and unblock (ReleaseLease),
-- each one statement that writes its audit row. Holder, actor and pod have
-- typical lengths.
--
-- Generated from queries/ by deploy/bench/tokenbench/auditscript_test.go; do
-- not edit.
\set probe random(0, 999999999) / 1000000000.0
WITH pick AS MATERIALIZED (
    -- The branches run in turn until one yields a row (LIMIT 1 over the
    -- Append): the free probe from the random point, then below it, then
    -- the lapsed leases. Each returns the locked row's id and lease as they
    -- are once locked, so the row is read once here and once by the update.
    SELECT hi.id, hi.prev_lease_id, hi.prev_holder FROM (
        SELECT f.id, NULL::bigint AS prev_lease_id, NULL::text AS prev_holder FROM tokens f
        WHERE f.pool_id = 1::int AND f.lease_id IS NULL
          AND f.sort_key >= :probe::float8 AND f.alive_until > now()
        ORDER BY f.sort_key LIMIT 1 FOR UPDATE SKIP LOCKED) hi
    UNION ALL
    SELECT lo.id, lo.prev_lease_id, lo.prev_holder FROM (
        SELECT f.id, NULL::bigint AS prev_lease_id, NULL::text AS prev_holder FROM tokens f
        WHERE f.pool_id = 1::int AND f.lease_id IS NULL
          AND f.sort_key < :probe::float8 AND f.alive_until > now()
        ORDER BY f.sort_key LIMIT 1 FOR UPDATE SKIP LOCKED) lo
    UNION ALL
    SELECT lapsed.id, lapsed.lease_id, lapsed.holder FROM (
        SELECT l.id, l.lease_id, l.holder FROM tokens l
        WHERE l.pool_id = 1::int AND l.lease_id IS NOT NULL AND l.alive_until > now()
          AND l.lease_expires_at <= LEAST(now(), COALESCE(
                  (SELECT w.lease_expires_at FROM tokens w
                    WHERE w.pool_id = 1::int AND w.lease_id IS NOT NULL
                      AND w.lease_expires_at <= now()
                    ORDER BY w.lease_expires_at OFFSET 255 LIMIT 1), now()))
        ORDER BY l.lease_expires_at LIMIT 1 FOR UPDATE SKIP LOCKED) lapsed
    LIMIT 1
),
claimed AS (
    UPDATE tokens t
    SET lease_id = nextval('lease_id_seq'),
        lease_ttl = 60000::bigint * interval '1 millisecond',
        lease_expires_at = clock_timestamp() + 60000::bigint * interval '1 millisecond',
        holder = 'ci-runner-0042'::text,
        lease_actor = 'ci-pipeline'::text,
        -- A lapsed lease ends first (released), then the new one starts.
        version = t.version + CASE WHEN pick.prev_lease_id IS NULL THEN 1 ELSE 2 END
    FROM pick
    WHERE t.pool_id = 1::int AND t.id = pick.id
    RETURNING t.id, t.value, t.lease_id, t.lease_expires_at, t.alive_until, t.holder, t.version,
              pick.prev_lease_id, pick.prev_holder
),
audit AS (
    INSERT INTO token_log (pool_id, kind, token_id, lease_id, holder, pod_id, version, actor_id)
    SELECT 1::int, 'r', c.id, c.prev_lease_id, c.prev_holder,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = 'tokend-7c9f5d8b6-x2k4q-1'::text), audit_name_id('tokend-7c9f5d8b6-x2k4q-1'::text)), c.version - 1, NULL
      FROM claimed c WHERE c.prev_lease_id IS NOT NULL
    UNION ALL
    SELECT 1::int, 'a', c.id, c.lease_id, c.holder,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = 'tokend-7c9f5d8b6-x2k4q-1'::text), audit_name_id('tokend-7c9f5d8b6-x2k4q-1'::text)), c.version,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = 'ci-pipeline'::text), audit_name_id('ci-pipeline'::text))
      FROM claimed c
),
counted AS (
    -- The pool's counter row of this backend (slot -pid; migration 00030):
    -- no other transaction writes it meanwhile, so the claim never waits.
    UPDATE token_counters
    SET assigned = assigned + 1
    WHERE pool_id = 1::int AND slot = -pg_backend_pid()
      AND EXISTS (SELECT 1 FROM claimed WHERE prev_lease_id IS NULL)
    RETURNING slot
),
counter_row AS (
    -- The backend's first count in the pool (or its first since the sweep
    -- folded its row) makes the row.
    INSERT INTO token_counters AS k (pool_id, slot, assigned)
    SELECT 1::int, -pg_backend_pid(), 1
    WHERE EXISTS (SELECT 1 FROM claimed WHERE prev_lease_id IS NULL) AND NOT EXISTS (SELECT 1 FROM counted)
    ON CONFLICT (pool_id, slot) DO UPDATE SET assigned = k.assigned + EXCLUDED.assigned
)
SELECT c.value, c.lease_id::bigint AS lease_id, c.lease_expires_at::timestamptz AS lease_expires_at,
       c.alive_until, c.holder
FROM claimed c
\gset
WITH cur AS MATERIALIZED (
    SELECT t.id, t.value, t.lease_id, t.lease_ttl, t.holder,
           (t.lease_id IS NOT NULL AND t.lease_expires_at > now()) AS has_live_lease,
           (true::boolean AND t.lease_id IS NOT NULL AND t.lease_expires_at > now()
            AND t.lease_actor IS DISTINCT FROM 'ci-pipeline'::text) AS forbidden
    FROM tokens t
    WHERE t.pool_id = 1::int AND t.value = :value::text
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
    SET alive_until = c.at + 86400000::bigint * interval '1 millisecond',
        lease_expires_at = CASE WHEN :lease_id::bigint IS NULL THEN t.lease_expires_at
                                ELSE c.at + cur.lease_ttl END,
        version = t.version + 1
    FROM cur, clk c
    WHERE t.pool_id = 1::int AND t.id = cur.id AND NOT cur.forbidden
      AND (:lease_id::bigint IS NULL
           OR (t.lease_id = :lease_id::bigint AND t.lease_expires_at > c.at))
    RETURNING t.id, t.alive_until, t.lease_expires_at, t.version,
              (t.lease_id IS NOT NULL AND t.lease_expires_at > c.at) AS live
),
audit AS (
    INSERT INTO token_log (pool_id, kind, token_id, lease_id, holder, pod_id, version, actor_id)
    SELECT 1::int, 'k', cur.id,
           CASE WHEN :lease_id::bigint IS NOT NULL THEN cur.lease_id END,
           CASE WHEN :lease_id::bigint IS NOT NULL THEN cur.holder END,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = 'tokend-7c9f5d8b6-x2k4q-1'::text), audit_name_id('tokend-7c9f5d8b6-x2k4q-1'::text)), k.version,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = 'ci-pipeline'::text), audit_name_id('ci-pipeline'::text))
    FROM cur JOIN kept k ON k.id = cur.id
)
SELECT cur.value, cur.lease_id, COALESCE(k.live, cur.has_live_lease)::boolean AS has_live_lease, cur.holder,
       cur.forbidden::boolean AS forbidden, (k.id IS NOT NULL)::boolean AS updated,
       k.alive_until, k.lease_expires_at
FROM cur LEFT JOIN kept k ON k.id = cur.id;
WITH cur AS MATERIALIZED (
    SELECT t.id, t.value, t.lease_id, t.holder,
           (t.lease_id IS NOT NULL AND t.lease_expires_at > now()) AS has_live_lease,
           (true::boolean AND t.lease_id IS NOT NULL AND t.lease_expires_at > now()
            AND t.lease_actor IS DISTINCT FROM 'ci-pipeline'::text) AS forbidden
    FROM tokens t
    WHERE t.pool_id = 1::int AND t.value = :value::text
      AND t.alive_until > now()
    FOR UPDATE
),
released AS (
    UPDATE tokens t
    SET lease_id = NULL, lease_ttl = NULL, lease_expires_at = NULL, holder = NULL, lease_actor = NULL,
        sort_key = random(), version = t.version + 1
    FROM cur
    WHERE t.pool_id = 1::int AND t.id = cur.id AND cur.has_live_lease AND NOT cur.forbidden
      AND (:lease_id::bigint IS NULL OR cur.lease_id = :lease_id::bigint)
    RETURNING t.id, t.version
),
audit AS (
    INSERT INTO token_log (pool_id, kind, token_id, lease_id, holder, pod_id, version, actor_id)
    SELECT 1::int, 'u', cur.id, cur.lease_id, cur.holder,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = 'tokend-7c9f5d8b6-x2k4q-1'::text), audit_name_id('tokend-7c9f5d8b6-x2k4q-1'::text)), r.version,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = 'ci-pipeline'::text), audit_name_id('ci-pipeline'::text))
    FROM cur JOIN released r ON r.id = cur.id
),
counted AS (
    -- This backend's counter row, as in ClaimRandomFree.
    UPDATE token_counters
    SET assigned = assigned - 1
    WHERE pool_id = 1::int AND slot = -pg_backend_pid()
      AND EXISTS (SELECT 1 FROM released)
    RETURNING slot
),
counter_row AS (
    INSERT INTO token_counters AS k (pool_id, slot, assigned)
    SELECT 1::int, -pg_backend_pid(), -1
    WHERE EXISTS (SELECT 1 FROM released) AND NOT EXISTS (SELECT 1 FROM counted)
    ON CONFLICT (pool_id, slot) DO UPDATE SET assigned = k.assigned + EXCLUDED.assigned
)
SELECT cur.lease_id, cur.has_live_lease::boolean AS has_live_lease, cur.forbidden::boolean AS forbidden,
       EXISTS (SELECT 1 FROM released) AS released
FROM cur;
