#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers at 127.0.0.1:5432 for `make run` and
# `make test`:
#   1. a server already answering there is used as it is;
#   2. else, where PostgreSQL is installed, a private cluster is booted under
#      .data/ with initdb/pg_ctl (as the postgres user when run as root);
#   3. else it says how to get one and exits non-zero (with --optional it
#      only warns, so that the tests can still try testcontainers-go).
set -euo pipefail

#
# With --stop (make db-stop) it stops the private cluster, if one runs, and
# removes the cluster's directory when it lives in /var/tmp (see below):
# nothing of it is left outside the checkout.
optional=false
[ "${1:-}" = "--optional" ] && optional=true

root=$(cd "$(dirname "$0")/.." && pwd)
# The benchmark reuses this script for its own cluster, with its own
# directory, port and server options.
data="$root/${DEV_PG_DIR:-.data/pg}"
host=127.0.0.1
port=${DEV_PG_PORT:-5432}
opts=${DEV_PG_OPTS:--c fsync=off -c max_connections=200}

if [ "${1:-}" = "--stop" ]; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  dir=$(readlink -f "$data" || true)
  if [ -n "$dir" ] && [ -f "$dir/postmaster.pid" ] && [ -n "$bindir" ]; then
    if [ "$(id -u)" = 0 ]; then
      (cd / && runuser -u postgres -- "$bindir/pg_ctl" -D "$dir" -m fast stop)
    else
      "$bindir/pg_ctl" -D "$dir" -m fast stop
    fi
  fi
  if [ -L "$data" ]; then
    case "$dir" in
      /var/tmp/tokenlease-pg-*)
        rm -rf -- "$dir"
        rm -f -- "$data"
        echo "tokenlease: removed the private cluster's files in $dir" >&2 ;;
    esac
  fi
  exit 0
fi

answers() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h "$host" -p "$port" -t 2
  else
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
  fi
}

if answers; then
  exit 0
fi

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  msg="No PostgreSQL server answers at $host:$port and PostgreSQL is not installed.
Get one of:
  - Debian/Ubuntu: sudo apt-get install -y postgresql   (then run this again)
  - Docker:        docker compose up                   (service and database together)
  - any server:    export DATABASE_URL=... (and TEST_DATABASE_URL=... for make test)"
  if $optional; then
    echo "warning: $msg" >&2
    exit 0
  fi
  echo "$msg" >&2
  exit 1
fi

# initdb and postgres refuse to run as root: use the postgres user (or
# another non-root user) that owns the data directory.
run_as=()
if [ "$(id -u)" = 0 ]; then
  user=postgres
  id "$user" >/dev/null 2>&1 || useradd --system --no-create-home "$user"
  run_as=(runuser -u "$user" --)
fi

mkdir -p "$root/.data"
if [ "${#run_as[@]}" -gt 0 ] && [ ! -e "$data" ]; then
  # The postgres user must reach the data directory. Where the checkout lies
  # behind a directory it cannot enter (a private temporary directory, say),
  # the cluster lives in /var/tmp and .data/pg points to it.
  if ! (cd / && "${run_as[@]}" test -x "$root/.data"); then
    outside="/var/tmp/tokenlease-pg-$(echo "$data" | md5sum | cut -c1-12)"
    mkdir -p "$outside"
    ln -sfn "$outside" "$data"
    echo "tokenlease: $root is closed to the $user user; the cluster's files go to $outside (linked as ${DEV_PG_DIR:-.data/pg})" >&2
  fi
fi
mkdir -p "$data/"
if [ "${#run_as[@]}" -gt 0 ]; then chown "$user" "$data/"; chmod 700 "$data/"; fi
data=$(cd "$data" && pwd -P)

if [ ! -f "$data/PG_VERSION" ]; then
  echo "tokenlease: no PostgreSQL at $host:$port; creating a private cluster in ${DEV_PG_DIR:-.data/pg}" >&2
  (cd / && "${run_as[@]}" "$bindir/initdb" -D "$data" -U postgres --auth=trust --no-sync -E UTF8 >/dev/null)
fi
echo "tokenlease: starting the private PostgreSQL cluster in ${DEV_PG_DIR:-.data/pg} on $host:$port" >&2
(cd / && "${run_as[@]}" "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
  -o "-h $host -p $port -k $data $opts" start >/dev/null)
answers
