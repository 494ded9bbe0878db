#!/usr/bin/env bash
# Used by `make run`: makes sure .data/admin.key holds a local admin key
# (mode 0600), creating one on first run, and says how to use it. tokend
# creates that key in the database at start-up (BOOTSTRAP_ADMIN_KEY) while
# no admin key exists there.
set -euo pipefail
cd "$(dirname "$0")/.."
key_file=.data/admin.key
GO=${GO:-go}
if [ ! -s "$key_file" ]; then
    mkdir -p .data
    (umask 077 && "$GO" run ./cmd/tokend keys generate-secret >"$key_file.tmp")
    mv "$key_file.tmp" "$key_file"
    echo "admin-key: created a local admin key in $key_file (mode 0600)"
fi
chmod 600 "$key_file"
cat <<MSG
admin-key: every request needs it, e.g.
    curl -s -H "Authorization: Bearer \$(cat $key_file)" localhost:8080/tokens/stats
  more keys (roles admin, operator, client, reader):
    curl -s -H "Authorization: Bearer \$(cat $key_file)" -X POST localhost:8080/admin/keys -d '{"name": "worker-1", "role": "client"}'
  (if the database already had an admin key, this one is not created: use \`go run ./cmd/tokend keys create\`)
MSG
