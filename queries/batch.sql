-- name: ClaimBatch :many
-- Assigns up to cardinality(ttl_ms) random free, live tokens in one statement,
-- one per request of a batch (the per-pod batcher coalesces concurrent
-- assigns). Request i asks for a lease of ttl_ms[i] held by holders[i] (''
-- for none); a returned row carries the request's ordinal, and a request
-- without a row found no token. The probe starts at one random point of the
-- free index and takes consecutive keys, wrapping around; each token is still
-- a uniformly random free token, since sort keys are random and redrawn on
-- every release. Only when no free token is left does it take the oldest
-- lapsed leases, among a bounded window of them. Every branch locks with SKIP LOCKED, so concurrent batches
-- (other pods) never wait for or share a row. Audit rows and the counter
-- slot commit with the claim, as in ClaimRandomFree. The lease runs from
-- clock_timestamp(), the moment the row is written: now() is the statement's
-- start, and a statement that waited for a lock (say, behind DDL on the audit
-- table) would otherwise hand out a lease that is already dead.
WITH req AS (
    SELECT r.ord, r.ttl_ms, NULLIF(h.holder, '') AS holder
    FROM unnest(sqlc.arg('ttl_ms')::bigint[]) WITH ORDINALITY AS r(ttl_ms, ord)
    JOIN unnest(sqlc.arg('holders')::text[]) WITH ORDINALITY AS h(holder, ord) ON h.ord = r.ord
),
hi AS MATERIALIZED (
    SELECT f.id FROM tokens f
    WHERE f.lease_id IS NULL AND f.sort_key >= sqlc.arg('probe')::float8 AND f.alive_until > now()
    ORDER BY f.sort_key
    LIMIT cardinality(sqlc.arg('ttl_ms')::bigint[])
    FOR UPDATE SKIP LOCKED
),
lo AS MATERIALIZED (
    SELECT f.id FROM tokens f
    WHERE f.lease_id IS NULL AND f.sort_key < sqlc.arg('probe')::float8 AND f.alive_until > now()
    ORDER BY f.sort_key
    LIMIT cardinality(sqlc.arg('ttl_ms')::bigint[]) - (SELECT count(*) FROM hi)
    FOR UPDATE SKIP LOCKED
),
lapsed AS MATERIALIZED (
    -- Only among the 256 earliest lapsed leases: leases of dead, unswept
    -- rows lapse first, and the probe must not read on past all of them
    -- (the sweeps remove dead rows first). Dead rows in the window are
    -- skipped on the index entry (tokens_lapse_live).
    SELECT l.id, l.lease_id, l.holder FROM tokens l
    WHERE l.lease_id IS NOT NULL AND l.alive_until > now()
      AND l.lease_expires_at <= LEAST(now(), COALESCE(
              (SELECT w.lease_expires_at FROM tokens w
                WHERE w.lease_id IS NOT NULL AND w.lease_expires_at <= now()
                ORDER BY w.lease_expires_at OFFSET 255 LIMIT 1), now()))
    ORDER BY l.lease_expires_at
    LIMIT cardinality(sqlc.arg('ttl_ms')::bigint[]) - (SELECT count(*) FROM hi) - (SELECT count(*) FROM lo)
    FOR UPDATE SKIP LOCKED
),
pick AS (
    SELECT p.id, p.prev_lease_id, p.prev_holder, row_number() OVER () AS ord
    FROM (SELECT hi.id, NULL::bigint AS prev_lease_id, NULL::text AS prev_holder FROM hi
          UNION ALL SELECT lo.id, NULL::bigint, NULL::text FROM lo
          UNION ALL SELECT lapsed.id, lapsed.lease_id, lapsed.holder FROM lapsed) p
),
claimed AS (
    UPDATE tokens t
    SET lease_id = nextval('lease_id_seq'),
        lease_ttl = req.ttl_ms * interval '1 millisecond',
        lease_expires_at = clock_timestamp() + req.ttl_ms * interval '1 millisecond',
        holder = req.holder
    FROM pick JOIN req ON req.ord = pick.ord
    WHERE t.id = pick.id
    RETURNING pick.ord, t.id, t.value, t.lease_id, t.lease_expires_at, t.alive_until, t.holder,
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
    SET assigned = assigned + (SELECT count(*) FROM claimed WHERE prev_lease_id IS NULL)
    WHERE slot = sqlc.arg('slot')::smallint AND EXISTS (SELECT 1 FROM claimed WHERE prev_lease_id IS NULL)
)
SELECT c.ord::bigint AS ord, c.value, c.lease_id::bigint AS lease_id,
       c.lease_expires_at::timestamptz AS lease_expires_at, c.alive_until, c.holder
FROM claimed c;

-- name: ReleaseBatch :many
-- Unblocks a batch of tokens in one statement: request i names tokens[i] and,
-- unless lease_ids[i] is 0, the lease it must release. Rows come back per
-- request ordinal as in ReleaseLease: no row is not_found; has_live_lease
-- false is not_assigned; released false otherwise is lease_mismatch. The
-- batcher never puts one token twice into a batch. Rows are locked in id
-- order, so two batches that share tokens cannot deadlock.
WITH req AS (
    SELECT r.ord, r.token, NULLIF(l.lease_id, 0) AS lease_id
    FROM unnest(sqlc.arg('tokens')::text[]) WITH ORDINALITY AS r(token, ord)
    JOIN unnest(sqlc.arg('lease_ids')::bigint[]) WITH ORDINALITY AS l(lease_id, ord) ON l.ord = r.ord
),
cur AS MATERIALIZED (
    SELECT req.ord, req.lease_id AS want, t.id, t.value, t.lease_id, t.holder,
           (t.lease_id IS NOT NULL AND t.lease_expires_at > now()) AS has_live_lease
    FROM req JOIN tokens t ON t.value = req.token
    WHERE t.alive_until > now()
    ORDER BY t.id
    FOR UPDATE OF t
),
released AS (
    UPDATE tokens t
    SET lease_id = NULL, lease_ttl = NULL, lease_expires_at = NULL, holder = NULL,
        sort_key = random()
    FROM cur
    WHERE t.id = cur.id AND cur.has_live_lease
      AND (cur.want IS NULL OR cur.lease_id = cur.want)
    -- What the audit row and the answer need comes along: joining cur to
    -- released again would be a nested loop over two CTE scans.
    RETURNING cur.ord, t.id, cur.value, cur.lease_id, cur.holder
),
audit AS (
    INSERT INTO token_events (kind, token_id, token, lease_id, holder, pod)
    SELECT 'unblocked', r.id, r.value, r.lease_id, r.holder, sqlc.arg('pod')::text
    FROM released r
),
counted AS (
    UPDATE token_counters
    SET assigned = assigned - (SELECT count(*) FROM released)
    WHERE slot = sqlc.arg('slot')::smallint AND EXISTS (SELECT 1 FROM released)
)
-- Released requests, then the refused ones: a row that fails the release
-- condition cannot have been released, and one that meets it was (it is
-- locked by cur), so the two parts never overlap.
SELECT r.ord::bigint AS ord, true AS has_live_lease, true AS released
FROM released r
UNION ALL
SELECT cur.ord::bigint, cur.has_live_lease::boolean, false
FROM cur
WHERE NOT (cur.has_live_lease AND (cur.want IS NULL OR cur.lease_id = cur.want));

-- name: KeepAliveBatch :many
-- Keep-alive for a batch of tokens in one statement, as KeepAlive does for
-- one: request i names tokens[i] and, unless lease_ids[i] is 0, the lease it
-- renews. A request whose lease id does not name the live lease changes
-- nothing (updated false); no row is not_found. The batcher never puts one
-- token twice into a batch; rows are locked in id order (no deadlocks).
WITH req AS (
    SELECT r.ord, r.token, NULLIF(l.lease_id, 0) AS lease_id
    FROM unnest(sqlc.arg('tokens')::text[]) WITH ORDINALITY AS r(token, ord)
    JOIN unnest(sqlc.arg('lease_ids')::bigint[]) WITH ORDINALITY AS l(lease_id, ord) ON l.ord = r.ord
),
cur AS MATERIALIZED (
    SELECT req.ord, req.lease_id AS want, t.id, t.value, t.lease_id, t.lease_ttl, t.holder,
           (t.lease_id IS NOT NULL AND t.lease_expires_at > now()) AS has_live_lease
    FROM req JOIN tokens t ON t.value = req.token
    WHERE t.alive_until > now()
    ORDER BY t.id
    FOR UPDATE OF t
),
kept AS (
    -- Deadlines count from clock_timestamp(), after the row lock was
    -- granted: cur's row lock may have waited for another transaction, and a
    -- lease that lapsed meanwhile is not renewed (lease_mismatch).
    UPDATE tokens t
    SET alive_until = clock_timestamp() + sqlc.arg('keepalive_ttl_ms')::bigint * interval '1 millisecond',
        lease_expires_at = CASE WHEN cur.want IS NULL THEN t.lease_expires_at
                                ELSE clock_timestamp() + cur.lease_ttl END
    FROM cur
    WHERE t.id = cur.id
      AND (cur.want IS NULL
           OR (t.lease_id = cur.want AND t.lease_expires_at > clock_timestamp()))
    RETURNING cur.ord, t.id, t.alive_until, t.lease_expires_at,
              (t.lease_id IS NOT NULL AND t.lease_expires_at > clock_timestamp()) AS live
),
audit AS (
    INSERT INTO token_events (kind, token_id, token, lease_id, holder, pod)
    SELECT 'kept_alive', cur.id, cur.value,
           CASE WHEN cur.want IS NOT NULL THEN cur.lease_id END,
           CASE WHEN cur.want IS NOT NULL THEN cur.holder END,
           sqlc.arg('pod')::text
    FROM cur JOIN kept k ON k.ord = cur.ord
)
SELECT cur.ord::bigint AS ord, cur.value, cur.lease_id,
       COALESCE(k.live, cur.has_live_lease)::boolean AS has_live_lease,
       cur.holder, (k.id IS NOT NULL)::boolean AS updated, k.alive_until, k.lease_expires_at
FROM cur LEFT JOIN kept k ON k.ord = cur.ord;
