-- Reference ceiling of the design's hot path, for pgbench -M prepared -f.
-- One cycle = the claim statement (queries/claim.sql, ClaimRandomFree) and
-- the release statement (queries/lease.sql, ReleaseLease, with the lease id),
-- back to back, each one statement that also writes its audit row and moves a
-- counter slot. Run against a database migrated by `tokend migrate` and
-- loaded with tokens: the schema is the service's own.
--
-- Generated from queries/ by deploy/bench/tokenbench/claimscript_test.go; do
-- not edit.
\set probe random(0, 999999999) / 1000000000.0
\set slot random(0, 15)
WITH pick AS MATERIALIZED (
    SELECT t.id, t.lease_id AS prev_lease_id, t.holder AS prev_holder
    FROM tokens t
    WHERE t.id = COALESCE(
        (SELECT f.id FROM tokens f
          WHERE f.lease_id IS NULL AND f.sort_key >= :probe::float8 AND f.alive_until > now()
          ORDER BY f.sort_key LIMIT 1 FOR UPDATE SKIP LOCKED),
        (SELECT f.id FROM tokens f
          WHERE f.lease_id IS NULL AND f.sort_key < :probe::float8 AND f.alive_until > now()
          ORDER BY f.sort_key LIMIT 1 FOR UPDATE SKIP LOCKED),
        (SELECT l.id FROM tokens l
          WHERE l.lease_id IS NOT NULL AND l.lease_expires_at <= now() AND l.alive_until > now()
          ORDER BY l.lease_expires_at LIMIT 1 FOR UPDATE SKIP LOCKED))
),
claimed AS (
    UPDATE tokens t
    SET lease_id = nextval('lease_id_seq'),
        lease_ttl = 60000::bigint * interval '1 millisecond',
        lease_expires_at = now() + 60000::bigint * interval '1 millisecond',
        holder = NULL::text
    FROM pick
    WHERE t.id = pick.id
    RETURNING t.id, t.value, t.lease_id, t.lease_expires_at, t.alive_until, t.holder,
              pick.prev_lease_id, pick.prev_holder
),
audit AS (
    INSERT INTO token_events (kind, token_id, token, lease_id, holder, pod)
    SELECT 'released', c.id, c.value, c.prev_lease_id, c.prev_holder, 'pgbench'::text
      FROM claimed c WHERE c.prev_lease_id IS NOT NULL
    UNION ALL
    SELECT 'assigned', c.id, c.value, c.lease_id, c.holder, 'pgbench'::text FROM claimed c
),
counted AS (
    UPDATE token_counters
    SET assigned = assigned + 1
    WHERE slot = :slot::smallint AND EXISTS (SELECT 1 FROM claimed WHERE prev_lease_id IS NULL)
)
SELECT c.value, c.lease_id::bigint AS lease_id, c.lease_expires_at::timestamptz AS lease_expires_at,
       c.alive_until, c.holder
FROM claimed c
\gset
\set slot random(0, 15)
WITH cur AS MATERIALIZED (
    SELECT t.id, t.value, t.lease_id, t.holder,
           (t.lease_id IS NOT NULL AND t.lease_expires_at > now()) AS has_live_lease
    FROM tokens t
    WHERE t.value = :value::text AND t.alive_until > now()
    FOR UPDATE
),
released AS (
    UPDATE tokens t
    SET lease_id = NULL, lease_ttl = NULL, lease_expires_at = NULL, holder = NULL,
        sort_key = random()
    FROM cur
    WHERE t.id = cur.id AND cur.has_live_lease
      AND (:lease_id::bigint IS NULL OR cur.lease_id = :lease_id::bigint)
    RETURNING t.id
),
audit AS (
    INSERT INTO token_events (kind, token_id, token, lease_id, holder, pod)
    SELECT 'unblocked', cur.id, cur.value, cur.lease_id, cur.holder, 'pgbench'::text
    FROM cur JOIN released r ON r.id = cur.id
),
counted AS (
    UPDATE token_counters
    SET assigned = assigned - 1
    WHERE slot = :slot::smallint AND EXISTS (SELECT 1 FROM released)
)
SELECT cur.lease_id, cur.has_live_lease::boolean AS has_live_lease,
       EXISTS (SELECT 1 FROM released) AS released
FROM cur;
