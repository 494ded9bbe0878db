#!/usr/bin/env bash
# make bench: measures the service against its own limits on this machine.
#
#   1. builds bin/tokend and bin/tokenbench;
#   2. boots a private PostgreSQL cluster for the benchmark under .data/bench-pg
#      (port BENCH_PG_PORT, default 55432), so that the cluster's CPU can be
#      counted from /proc without other work mixed in; BENCH_DATABASE_URL
#      points it at another local server instead;
#   3. runs `tokenbench suite`: per pool size a fresh database
#      (tokenlease_bench_10k, _100k, _1m) and a lean-ceiling database with as
#      many tokens (tokenlease_bench_lean_*, deploy/bench/lean/setup.sql),
#      pods started with BATCHING on (1, 2 and 4 pods) and off, the lean
#      ceiling and the reference pgbench scripts, the bare net/http floor,
#      and the audit-bytes run (assign -> keep-alive -> unblock) beside them,
#      in rotating A/B rounds; prints the tables (issue 14's targets against
#      the lean ceiling first) and writes them into docs/BENCHMARKS.md;
#      about 13 minutes on an idle machine.
#
# BENCH_QUICK=1: one round, 10k and 1M pools, short windows (about 3 minutes,
#   most of it loading the 1M pools).
# BENCH_SCENARIO=churn (make bench-churn): only the churn scenario, 5 minutes
#   of assign/unblock/keep-alive on a 100k pool, then 90 s per table-settings
#   variant (shipped vs PostgreSQL's defaults); about 9 minutes. It writes
#   its own section of docs/BENCHMARKS.md.
# BENCH_SCENARIO=pools (make bench-pools): 16 clients over 8 pools vs 16 on one
#   pool (same total tokens), and claims in a 1k pool beside a 1M pool vs a
#   lone 1k pool; about 3 minutes.
# BENCH_ARGS: extra flags for `tokenbench suite` (e.g. -rounds 5 -clients 16).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

port=${BENCH_PG_PORT:-55432}
data="$root/.data/bench-pg"

need_pkg() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bench: installing $1 from Debian" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
  else
    echo "bench: $2 is missing: install $1 (Debian/Ubuntu: apt-get install -y $1)" >&2
    exit 1
  fi
}

command -v go >/dev/null || { echo "bench: Go is missing" >&2; exit 1; }
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "${BENCH_DATABASE_URL:-}" ] && { [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; }; then
  need_pkg postgresql "PostgreSQL (initdb, pg_ctl)"
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
pgbench=$(command -v pgbench || true)
if [ -z "$pgbench" ] && [ -n "$bindir" ] && [ -x "$bindir/pgbench" ]; then pgbench="$bindir/pgbench"; fi
if [ -z "$pgbench" ]; then
  need_pkg postgresql-contrib "pgbench"
  pgbench=$(command -v pgbench || echo "$bindir/pgbench")
fi

echo "bench: building bin/tokend and bin/tokenbench" >&2
mkdir -p bin
CGO_ENABLED=0 go build -o bin/tokend ./cmd/tokend
CGO_ENABLED=0 go build -o bin/tokenbench ./deploy/bench/tokenbench

started_cluster=false
stop_cluster() {
  if $started_cluster; then
    local dir bin=("$bindir/pg_ctl")
    dir=$(readlink -f "$data")
    if [ "$(id -u)" = 0 ]; then bin=(runuser -u postgres -- "$bindir/pg_ctl"); fi
    (cd / && "${bin[@]}" -D "$dir" -m fast stop >/dev/null) || true
  fi
}
trap stop_cluster EXIT

if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  admin_url=$BENCH_DATABASE_URL
else
  if ! "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1 2>/dev/null; then
    # Durable commits (fsync and synchronous_commit stay on); memory for a
    # 1M-token pool; no checkpoint during a run (the suite reports how many
    # happened), so that full-page writes after one do not land in some
    # windows and not in others. The cluster is booted as make run boots its
    # own (as the postgres user when run as root).
    DEV_PG_DIR=.data/bench-pg DEV_PG_PORT=$port DEV_PG_OPTS="-c max_connections=300 -c shared_buffers=1GB \
      -c max_wal_size=16GB -c checkpoint_timeout=30min -c shared_preload_libraries=pg_stat_statements" \
      deploy/dev-postgres.sh
    started_cluster=true
  fi
  admin_url="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
fi

args=(-admin-url "$admin_url" -tokend bin/tokend -pgbench "$pgbench" -scripts deploy/bench -out docs/BENCHMARKS.md -logs .data/bench)
if [ "${BENCH_QUICK:-0}" = 1 ]; then args+=(-quick); fi
case "${BENCH_SCENARIO:-}" in
  "") ;;
  churn) args+=(-churn) ;;
  pools) args+=(-pools-scenario) ;;
  *) echo "bench: unknown BENCH_SCENARIO=${BENCH_SCENARIO} (known: churn, pools)" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
exec_status=0
bin/tokenbench suite "${args[@]}" ${BENCH_ARGS:-} || exec_status=$?
exit $exec_status
