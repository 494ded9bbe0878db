-- name: ClaimBatch :batchmany
-- Assigns a round of requests, each in its own pool (pool_ids[i]), in one
-- statement: request i asks for a random free, live token of pool_ids[i]
-- under a lease of ttl_ms[i] held by holders[i] and taken by actors[i] (''
-- for none); a returned row carries the request's ordinal, and a request
-- without a row found no token. The pod's batcher sends one statement for
-- all pools of a round (BATCH_ACROSS_POOLS=on), or one per pool (off: each
-- statement then names one pool, for a distributed database, see
-- docs/SCALING.md). Each pool is probed on its own (the LATERAL below: an
-- index probe led by the pool, never reading another pool's rows): from one
-- random point of the pool's free index it takes consecutive keys, wrapping
-- around; each token is still a uniformly random free token, since sort
-- keys are random and redrawn on every release. Only when no free token is
-- left does it take the pool's oldest lapsed leases, among a bounded window
-- of them. The lease runs from clock_timestamp(), the moment the row is
-- written: now() is the statement's start, and a statement that waited for
-- a lock would otherwise hand out a lease already dead. Every branch locks
-- with SKIP LOCKED, so concurrent rounds (other pods) never wait for or
-- share a row. Audit rows and each pool's counter row commit with the
-- claim, as in ClaimRandomFree.
WITH req AS (
    SELECT r.ord, p.pool_id, r.ttl_ms, NULLIF(h.holder, '') AS holder, NULLIF(a.actor, '') AS actor,
           row_number() OVER (PARTITION BY p.pool_id ORDER BY r.ord) AS k
    FROM unnest(sqlc.arg('ttl_ms')::bigint[]) WITH ORDINALITY AS r(ttl_ms, ord)
    JOIN unnest(sqlc.arg('pool_ids')::int[]) WITH ORDINALITY AS p(pool_id, ord) ON p.ord = r.ord
    JOIN unnest(sqlc.arg('holders')::text[]) WITH ORDINALITY AS h(holder, ord) ON h.ord = r.ord
    JOIN unnest(sqlc.arg('actors')::text[]) WITH ORDINALITY AS a(actor, ord) ON a.ord = r.ord
),
want AS MATERIALIZED (
    -- How many tokens each pool of the round is asked for, and where its
    -- probe starts.
    SELECT req.pool_id, count(*) AS n, random() AS probe FROM req GROUP BY req.pool_id
),
pick AS MATERIALIZED (
    SELECT w.pool_id, x.id, x.prev_lease_id, x.prev_holder,
           row_number() OVER (PARTITION BY w.pool_id) AS k
    FROM want w CROSS JOIN LATERAL (
        -- The branches run in turn until the pool's n rows are found (LIMIT
        -- over the Append): the free probe from the random point, then below
        -- it, then the lapsed leases.
        SELECT hi.id, hi.prev_lease_id, hi.prev_holder FROM (
            SELECT f.id, NULL::bigint AS prev_lease_id, NULL::text AS prev_holder FROM tokens f
            WHERE f.pool_id = w.pool_id AND f.lease_id IS NULL
              AND f.sort_key >= w.probe AND f.alive_until > now()
            ORDER BY f.sort_key LIMIT w.n FOR UPDATE SKIP LOCKED) hi
        UNION ALL
        SELECT lo.id, lo.prev_lease_id, lo.prev_holder FROM (
            SELECT f.id, NULL::bigint AS prev_lease_id, NULL::text AS prev_holder FROM tokens f
            WHERE f.pool_id = w.pool_id AND f.lease_id IS NULL
              AND f.sort_key < w.probe AND f.alive_until > now()
            ORDER BY f.sort_key LIMIT w.n FOR UPDATE SKIP LOCKED) lo
        UNION ALL
        -- Only among the pool's 256 earliest lapsed leases: leases of dead,
        -- unswept rows lapse first, and the probe must not read on past all
        -- of them (the sweeps remove dead rows first). Dead rows in the
        -- window are skipped on the index entry (tokens_lapse_live).
        SELECT lapsed.id, lapsed.lease_id, lapsed.holder FROM (
            SELECT l.id, l.lease_id, l.holder FROM tokens l
            WHERE l.pool_id = w.pool_id AND l.lease_id IS NOT NULL AND l.alive_until > now()
              AND l.lease_expires_at <= LEAST(now(), COALESCE(
                      (SELECT v.lease_expires_at FROM tokens v
                        WHERE v.pool_id = w.pool_id AND v.lease_id IS NOT NULL
                          AND v.lease_expires_at <= now()
                        ORDER BY v.lease_expires_at OFFSET 255 LIMIT 1), now()))
            ORDER BY l.lease_expires_at LIMIT w.n FOR UPDATE SKIP LOCKED) lapsed
        LIMIT w.n
    ) x
),
claimed AS (
    UPDATE tokens t
    SET lease_id = nextval('lease_id_seq'),
        lease_ttl = req.ttl_ms * interval '1 millisecond',
        lease_expires_at = clock_timestamp() + req.ttl_ms * interval '1 millisecond',
        holder = req.holder,
        lease_actor = req.actor,
        version = t.version + CASE WHEN pick.prev_lease_id IS NULL THEN 1 ELSE 2 END
    FROM pick JOIN req ON req.pool_id = pick.pool_id AND req.k = pick.k
    WHERE t.pool_id = pick.pool_id AND t.id = pick.id
    RETURNING req.ord, t.pool_id, t.id, t.value, t.lease_id, t.lease_expires_at, t.alive_until, t.holder,
              t.version, req.actor, pick.prev_lease_id, pick.prev_holder
),
audit AS (
    INSERT INTO token_log (pool_id, kind, token_id, lease_id, holder, pod_id, version, actor_id)
    SELECT c.pool_id, 'r', c.id, c.prev_lease_id, c.prev_holder,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.arg('pod')::text), audit_name_id(sqlc.arg('pod')::text)), c.version - 1, NULL
      FROM claimed c WHERE c.prev_lease_id IS NOT NULL
    UNION ALL
    SELECT c.pool_id, 'a', c.id, c.lease_id, c.holder,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.arg('pod')::text), audit_name_id(sqlc.arg('pod')::text)), c.version, COALESCE((SELECT n.id FROM audit_names n WHERE n.name = c.actor), audit_name_id(c.actor))
      FROM claimed c
),
fresh AS (
    -- New leases per pool (a lapsed lease taken over was counted already).
    SELECT c.pool_id, count(*) AS n FROM claimed c WHERE c.prev_lease_id IS NULL GROUP BY c.pool_id
),
counted AS (
    -- This backend's counter row of each pool, as in ClaimRandomFree.
    UPDATE token_counters k
    SET assigned = k.assigned + f.n
    FROM fresh f
    WHERE k.pool_id = f.pool_id AND k.slot = -pg_backend_pid()
    RETURNING k.pool_id
),
counter_row AS (
    INSERT INTO token_counters AS k (pool_id, slot, assigned)
    SELECT f.pool_id, -pg_backend_pid(), f.n
    FROM fresh f WHERE NOT EXISTS (SELECT 1 FROM counted c WHERE c.pool_id = f.pool_id)
    ON CONFLICT (pool_id, slot) DO UPDATE SET assigned = k.assigned + EXCLUDED.assigned
)
SELECT c.ord::bigint AS ord, c.value, c.lease_id::bigint AS lease_id,
       c.lease_expires_at::timestamptz AS lease_expires_at, c.alive_until, c.holder
FROM claimed c;

-- name: ReleaseBatch :batchmany
-- Unblocks a round of requests, each in its own pool, in one statement:
-- request i names tokens[i] of pool_ids[i], unless lease_ids[i] is 0 the
-- lease it must release, and the caller actors[i] ('' for none), restricted
-- to its own leases when own_only[i]. Rows come back per request ordinal as
-- in ReleaseLease: no row is not_found; forbidden; has_live_lease false is
-- not_assigned; released false otherwise is lease_mismatch. The batcher
-- never puts one token twice into a statement, and sends one for all pools
-- of a round or one per pool, as ClaimBatch. Rows are locked in (pool, id)
-- order, the order of every statement that waits for row locks, so two
-- rounds that share tokens cannot deadlock.
WITH req AS (
    SELECT r.ord, p.pool_id, r.token, NULLIF(l.lease_id, 0) AS lease_id, NULLIF(a.actor, '') AS actor, o.own_only
    FROM unnest(sqlc.arg('tokens')::text[]) WITH ORDINALITY AS r(token, ord)
    JOIN unnest(sqlc.arg('pool_ids')::int[]) WITH ORDINALITY AS p(pool_id, ord) ON p.ord = r.ord
    JOIN unnest(sqlc.arg('lease_ids')::bigint[]) WITH ORDINALITY AS l(lease_id, ord) ON l.ord = r.ord
    JOIN unnest(sqlc.arg('actors')::text[]) WITH ORDINALITY AS a(actor, ord) ON a.ord = r.ord
    JOIN unnest(sqlc.arg('own_only')::boolean[]) WITH ORDINALITY AS o(own_only, ord) ON o.ord = r.ord
),
cur AS MATERIALIZED (
    SELECT req.ord, req.lease_id AS want, req.actor, t.pool_id, t.id, t.value, t.lease_id, t.holder,
           (t.lease_id IS NOT NULL AND t.lease_expires_at > now()) AS has_live_lease,
           (req.own_only AND t.lease_id IS NOT NULL AND t.lease_expires_at > now()
            AND t.lease_actor IS DISTINCT FROM req.actor) AS forbidden
    FROM req JOIN tokens t ON t.pool_id = req.pool_id AND t.value = req.token
    WHERE t.alive_until > now()
    ORDER BY t.pool_id, t.id
    FOR UPDATE OF t
),
released AS (
    UPDATE tokens t
    SET lease_id = NULL, lease_ttl = NULL, lease_expires_at = NULL, holder = NULL, lease_actor = NULL,
        sort_key = random(), version = t.version + 1
    FROM cur
    WHERE t.pool_id = cur.pool_id AND t.id = cur.id AND cur.has_live_lease AND NOT cur.forbidden
      AND (cur.want IS NULL OR cur.lease_id = cur.want)
    -- What the audit row and the answer need comes along: joining cur to
    -- released again would be a nested loop over two CTE scans.
    RETURNING cur.ord, t.pool_id, t.id, cur.value, cur.lease_id, cur.holder, cur.actor, t.version
),
audit AS (
    INSERT INTO token_log (pool_id, kind, token_id, lease_id, holder, pod_id, version, actor_id)
    SELECT r.pool_id, 'u', r.id, r.lease_id, r.holder,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.arg('pod')::text), audit_name_id(sqlc.arg('pod')::text)), r.version, COALESCE((SELECT n.id FROM audit_names n WHERE n.name = r.actor), audit_name_id(r.actor))
    FROM released r
),
freed AS (
    SELECT r.pool_id, count(*) AS n FROM released r GROUP BY r.pool_id
),
counted AS (
    -- This backend's counter row of each pool, as in ClaimRandomFree.
    UPDATE token_counters k
    SET assigned = k.assigned - f.n
    FROM freed f
    WHERE k.pool_id = f.pool_id AND k.slot = -pg_backend_pid()
    RETURNING k.pool_id
),
counter_row AS (
    INSERT INTO token_counters AS k (pool_id, slot, assigned)
    SELECT f.pool_id, -pg_backend_pid(), -f.n
    FROM freed f WHERE NOT EXISTS (SELECT 1 FROM counted c WHERE c.pool_id = f.pool_id)
    ON CONFLICT (pool_id, slot) DO UPDATE SET assigned = k.assigned + EXCLUDED.assigned
)
-- Released requests, then the refused ones: a row that fails the release
-- condition cannot have been released, and one that meets it was (it is
-- locked by cur), so the two parts never overlap.
SELECT r.ord::bigint AS ord, true AS has_live_lease, false AS forbidden, true AS released
FROM released r
UNION ALL
SELECT cur.ord::bigint, cur.has_live_lease::boolean, cur.forbidden::boolean, false
FROM cur
WHERE NOT (cur.has_live_lease AND NOT cur.forbidden AND (cur.want IS NULL OR cur.lease_id = cur.want));

-- name: KeepAliveBatch :batchmany
-- Keep-alive for a batch of tokens of one pool in one statement, as
-- KeepAlive does for one: request i names tokens[i], unless lease_ids[i] is
-- 0 the lease it renews, and its caller as in ReleaseBatch. A request whose
-- lease id does not name the live lease, or that is forbidden, changes
-- nothing (updated false); no row is not_found. The batcher never puts one
-- token twice into a batch; rows are locked in id order (no deadlocks).
WITH req AS (
    SELECT r.ord, r.token, NULLIF(l.lease_id, 0) AS lease_id, NULLIF(a.actor, '') AS actor, o.own_only
    FROM unnest(sqlc.arg('tokens')::text[]) WITH ORDINALITY AS r(token, ord)
    JOIN unnest(sqlc.arg('lease_ids')::bigint[]) WITH ORDINALITY AS l(lease_id, ord) ON l.ord = r.ord
    JOIN unnest(sqlc.arg('actors')::text[]) WITH ORDINALITY AS a(actor, ord) ON a.ord = r.ord
    JOIN unnest(sqlc.arg('own_only')::boolean[]) WITH ORDINALITY AS o(own_only, ord) ON o.ord = r.ord
),
cur AS MATERIALIZED (
    SELECT req.ord, req.lease_id AS want, req.actor, t.id, t.value, t.lease_id, t.lease_ttl, t.holder,
           (t.lease_id IS NOT NULL AND t.lease_expires_at > now()) AS has_live_lease,
           (req.own_only AND t.lease_id IS NOT NULL AND t.lease_expires_at > now()
            AND t.lease_actor IS DISTINCT FROM req.actor) AS forbidden
    FROM req JOIN tokens t ON t.pool_id = sqlc.arg('pool_id')::int AND t.value = req.token
    WHERE t.alive_until > now()
    ORDER BY t.id
    FOR UPDATE OF t
),
-- One reading of the clock, taken once cur holds its rows' locks (reading
-- cur first orders it after them): both deadlines of a row count from it.
clk AS MATERIALIZED (
    SELECT clock_timestamp() AS at FROM cur LIMIT 1
),
kept AS (
    -- Deadlines count from clock_timestamp(), after the row lock was
    -- granted: cur's row lock may have waited for another transaction, and a
    -- lease that lapsed meanwhile is not renewed (lease_mismatch).
    UPDATE tokens t
    SET alive_until = c.at + sqlc.arg('keepalive_ttl_ms')::bigint * interval '1 millisecond',
        lease_expires_at = CASE WHEN cur.want IS NULL THEN t.lease_expires_at
                                ELSE c.at + cur.lease_ttl END,
        version = t.version + 1
    FROM cur, clk c
    WHERE t.pool_id = sqlc.arg('pool_id')::int AND t.id = cur.id AND NOT cur.forbidden
      AND (cur.want IS NULL OR (t.lease_id = cur.want AND t.lease_expires_at > c.at))
    RETURNING cur.ord, t.id, t.alive_until, t.lease_expires_at, t.version,
              (t.lease_id IS NOT NULL AND t.lease_expires_at > c.at) AS live
),
audit AS (
    INSERT INTO token_log (pool_id, kind, token_id, lease_id, holder, pod_id, version, actor_id)
    SELECT sqlc.arg('pool_id')::int, 'k', cur.id,
           CASE WHEN cur.want IS NOT NULL THEN cur.lease_id END,
           CASE WHEN cur.want IS NOT NULL THEN cur.holder END,
           COALESCE((SELECT n.id FROM audit_names n WHERE n.name = sqlc.arg('pod')::text), audit_name_id(sqlc.arg('pod')::text)), k.version, COALESCE((SELECT n.id FROM audit_names n WHERE n.name = cur.actor), audit_name_id(cur.actor))
    FROM cur JOIN kept k ON k.ord = cur.ord
)
SELECT cur.ord::bigint AS ord, cur.value, cur.lease_id,
       COALESCE(k.live, cur.has_live_lease)::boolean AS has_live_lease,
       cur.holder, cur.forbidden::boolean AS forbidden, (k.id IS NOT NULL)::boolean AS updated,
       k.alive_until, k.lease_expires_at
FROM cur LEFT JOIN kept k ON k.ord = cur.ord;
