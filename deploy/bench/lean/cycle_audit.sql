-- The lean ceiling's cycle, for pgbench -n -M prepared -f (database set up by
-- setup.sql): claim a random free token (its audit row in the same
-- statement), then release it by value and lease id (its audit row in the
-- same statement). tps = cycles/s; lease_seq counts the claims.
\set r random(0, 9000000000000000000)
SELECT coalesce(max(v),'') AS value, coalesce(max(l),0) AS lease_id FROM claim_a(:r, interval '60 s') \gset
WITH u AS (UPDATE tokens SET state=0, lease_id=NULL, lease_expires_at=NULL, rnd=(random()*9e18)::bigint WHERE value = :value AND lease_id = :lease_id RETURNING value, lease_id) INSERT INTO ev(kind, token, lease_id) SELECT 2, value, lease_id FROM u;
