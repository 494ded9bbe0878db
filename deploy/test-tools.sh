#!/usr/bin/env bash
# The tools the test suite drives besides PostgreSQL, installed from Debian's
# packages when missing: PgBouncer (the fault tests run the API through it),
# Chromium (the /docs browser test) and promtool (the alert rules' check).
# `make test` runs this first, so the README's test command passes on a
# fresh machine; without root it says what to install and stops.
set -euo pipefail

missing=()
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "the tests need: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing what the tests need from Debian's packages: ${missing[*]} (once; a minute or two)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
