#!/usr/bin/env bash
# make dashboard-preview: a picture of the Grafana dashboard
# deploy/grafana/tokenlease.json drawn from live data, for machines where
# Grafana cannot run. It
#   1. builds tokend and starts it on a throwaway database (created here,
#      dropped at the end) with a local admin key and its metrics listener;
#   2. starts Prometheus (Debian's `prometheus`) scraping that tokend every
#      2 s, with the alerting rules of deploy/prometheus/alerts.yaml;
#   3. runs a scripted workload over a few pools for PREVIEW_DURATION
#      (default 150s): holders that assign, keep alive and unblock, leases
#      that lapse, waiters, tokens that die, event streams and a few 503s;
#   4. serves a page that draws every panel of the dashboard from its own
#      queries (query_range against that Prometheus) and screenshots it with
#      headless Chromium into docs/img/dashboard.png (PREVIEW_OUT).
# Needs PostgreSQL at 127.0.0.1:5432 (user postgres, or PREVIEW_PG_URL, a
# URL of a role that may create databases, without a database name),
# prometheus and chromium (deploy/test-tools.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/../../.."

GO=${GO:-go}
duration=${PREVIEW_DURATION:-150s}
out=${PREVIEW_OUT:-docs/img/dashboard.png}
pg=${PREVIEW_PG_URL:-postgres://postgres@127.0.0.1:5432}
db="dashboard_preview_$$"
max_streams=4

# Prometheus and Chromium come from Debian, through the test suite's installer.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1 || [ ! -x /usr/bin/chromium ]; then
  deploy/test-tools.sh
fi
command -v psql >/dev/null || { echo "dashboard-preview: needs psql (postgresql-client)" >&2; exit 1; }

work=$(mktemp -d /tmp/dashboard-preview.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql -q "$pg/postgres?sslmode=disable" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "dashboard-preview: building tokend"
CGO_ENABLED=0 "$GO" build -o "$work/tokend" ./cmd/tokend
"$GO" build -o "$work/preview" ./deploy/grafana/preview
read -r http_port metrics_port prom_port < <("$work/preview" -free-ports 3)
key=$("$work/tokend" keys generate-secret)

echo "dashboard-preview: tokend on :$http_port (metrics :$metrics_port), database $db"
DATABASE_URL="$pg/$db?sslmode=disable" HTTP_ADDR="127.0.0.1:$http_port" METRICS_ADDR="127.0.0.1:$metrics_port" \
  BOOTSTRAP_ADMIN_KEY="$key" MAX_STREAMS=$max_streams LOG_LEVEL=warn POD_NAME=preview \
  "$work/tokend" >"$work/tokend.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do
  curl -fsS "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/tokend.log" >&2; exit 1; }
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$http_port/readyz" >/dev/null || { echo "tokend did not get ready" >&2; cat "$work/tokend.log" >&2; exit 1; }

# The job is named tokenlease, as alerts.yaml expects.
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 2s
  evaluation_interval: 2s
rule_files:
  - $PWD/deploy/prometheus/alerts.yaml
scrape_configs:
  - job_name: tokenlease
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
YAML
promtool check config "$work/prometheus.yml" >/dev/null
echo "dashboard-preview: Prometheus on :$prom_port"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$work/prometheus.log" 2>&1 &
pids+=($!)
for _ in $(seq 150); do
  curl -fsS "http://127.0.0.1:$prom_port/-/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$prom_port/-/ready" >/dev/null || { echo "Prometheus did not get ready" >&2; cat "$work/prometheus.log" >&2; exit 1; }

echo "dashboard-preview: workload for $duration, then the screenshot"
PREVIEW_ADMIN_KEY="$key" "$work/preview" -dashboard deploy/grafana/tokenlease.json \
  -prometheus "http://127.0.0.1:$prom_port" -tokend "http://127.0.0.1:$http_port" \
  -duration "$duration" -max-streams $max_streams -scrape-interval 2s -out "$out"
