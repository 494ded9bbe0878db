#!/usr/bin/env bash
# Audit bytes per assign -> keep-alive -> unblock cycle (issue 14), measured
# exactly rather than timed: the growth of every relation of token_events
# (partitions, their indexes, TOAST) and the WAL of the records that touch
# them (pg_walinspect, PostgreSQL 15+), over a scripted run of the service's
# own statements (deploy/bench/audit_cycle.sql, generated from queries/).
#
#   deploy/bench/auditbytes.sh DATABASE_URL [cycles] [warmup_cycles]
#
# The database must be migrated (`tokend migrate`) and is loaded with 10k
# tokens in pool default if it has fewer. The warm-up cycles fill the day's
# partition first, so that the measured run inserts into indexes of a
# realistic size; a CHECKPOINT precedes the measured run, so its full-page
# images are those of one checkpoint interval of `cycles` cycles (reported
# apart: they depend on checkpoint spacing, the rest does not).
# Needs superuser (pg_walinspect, CHECKPOINT). Quiet, single-purpose: run it
# on a private cluster (it is not a throughput measurement, so it needs no
# bench lock, but other writers of the same relations would be counted).
set -euo pipefail
url=${1:?usage: auditbytes.sh DATABASE_URL [cycles] [warmup_cycles]}
cycles=${2:-5000}
warmup=${3:-20000}
here=$(cd "$(dirname "$0")" && pwd)
psql=(psql -X -q -v ON_ERROR_STOP=1 -At "$url")

"${psql[@]}" <<'SQL'
CREATE EXTENSION IF NOT EXISTS pg_walinspect;
INSERT INTO tokens (pool_id, value, alive_until)
SELECT 1, substr(md5(g::text || random()::text), 1, 22), now() + interval '30 days'
FROM generate_series(1, 10000 - (SELECT count(*) FROM tokens WHERE pool_id = 1)) g;
UPDATE token_counters SET total = (SELECT count(*) FROM tokens WHERE pool_id = 1) WHERE pool_id = 1 AND slot = 0;
SQL

run() { pgbench -n -M prepared -c 4 -j 1 -t "$(($1 / 4))" -f "$here/audit_cycle.sql" "$url" >/dev/null; }
if [ "$warmup" -gt 0 ]; then run "$warmup"; fi
"${psql[@]}" -c "VACUUM (ANALYZE) tokens" -c "CHECKPOINT"

# Every relation of the audit log: the partitions and partitioned indexes,
# with their TOAST tables and TOAST indexes.
rels="
WITH RECURSIVE parts AS (
    SELECT relid FROM pg_partition_tree(COALESCE(to_regclass('token_log'), to_regclass('token_events')))
    UNION SELECT indexrelid FROM pg_index WHERE indrelid IN (SELECT relid FROM pg_partition_tree(COALESCE(to_regclass('token_log'), to_regclass('token_events'))))
), r AS (
    SELECT relid FROM parts
    UNION SELECT c.reltoastrelid FROM pg_class c JOIN parts p ON p.relid = c.oid WHERE c.reltoastrelid <> 0
    UNION SELECT i.indexrelid FROM pg_index i JOIN pg_class c ON c.reltoastrelid = i.indrelid JOIN parts p ON p.relid = c.oid
)"
sizes() {
  "${psql[@]}" -c "$rels SELECT coalesce(sum(pg_relation_size(c.oid)) FILTER (WHERE c.relkind IN ('r','t')), 0) || ' ' ||
                          coalesce(sum(pg_relation_size(c.oid)) FILTER (WHERE c.relkind = 'i'), 0)
                   FROM r JOIN pg_class c ON c.oid = r.relid"
}
read -r heap0 idx0 <<<"$(sizes)"
lsn0=$("${psql[@]}" -c "SELECT pg_current_wal_lsn()")
rows0=$("${psql[@]}" -c "SELECT count(*) FROM token_events")
run "$cycles"
lsn1=$("${psql[@]}" -c "SELECT pg_current_wal_lsn()")
read -r heap1 idx1 <<<"$(sizes)"
rows1=$("${psql[@]}" -c "SELECT count(*) FROM token_events")

# WAL records with a block reference to an audit relation (each record once).
"${psql[@]}" -F ' ' <<SQL
$rels,
nodes AS (SELECT c.relfilenode::text AS node, c.relkind FROM r JOIN pg_class c ON c.oid = r.relid WHERE c.relfilenode <> 0),
w AS (
    SELECT record_length, fpi_length,
           (SELECT n.relkind FROM nodes n
             WHERE n.node = ANY (SELECT m[1] FROM regexp_matches(w.block_ref, 'rel \d+/\d+/(\d+)', 'g') m) LIMIT 1) AS relkind
    FROM pg_get_wal_records_info('$lsn0', '$lsn1') w
)
SELECT 'rows_per_cycle', round(($rows1 - $rows0)::numeric / $cycles, 3)
UNION ALL SELECT 'heap_bytes_per_cycle', round(($heap1 - $heap0)::numeric / $cycles, 1)
UNION ALL SELECT 'index_bytes_per_cycle', round(($idx1 - $idx0)::numeric / $cycles, 1)
UNION ALL SELECT 'wal_heap_bytes_per_cycle', round(sum(record_length - fpi_length) FILTER (WHERE relkind IN ('r','t'))::numeric / $cycles, 1) FROM w
UNION ALL SELECT 'wal_index_bytes_per_cycle', round(sum(record_length - fpi_length) FILTER (WHERE relkind = 'i')::numeric / $cycles, 1) FROM w
UNION ALL SELECT 'wal_fpi_bytes_per_cycle', round(coalesce(sum(fpi_length) FILTER (WHERE relkind IS NOT NULL), 0)::numeric / $cycles, 1) FROM w
UNION ALL SELECT 'wal_all_relations_bytes_per_cycle', round(pg_wal_lsn_diff('$lsn1', '$lsn0') / $cycles, 1)
UNION ALL SELECT 'audit_total_no_fpi_bytes_per_cycle',
       round((($heap1 - $heap0) + ($idx1 - $idx0))::numeric / $cycles
             + sum(record_length - fpi_length) FILTER (WHERE relkind IS NOT NULL)::numeric / $cycles, 1) FROM w
UNION ALL SELECT 'audit_total_bytes_per_cycle',
       round((($heap1 - $heap0) + ($idx1 - $idx0))::numeric / $cycles
             + sum(record_length) FILTER (WHERE relkind IS NOT NULL)::numeric / $cycles, 1) FROM w;
SQL
