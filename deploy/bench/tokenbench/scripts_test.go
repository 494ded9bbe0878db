package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tokenlease/tokenlease/internal/testdb"
)

// The pgbench scripts `make bench` runs, run for a few cycles against a real
// database: the reference generated from queries/ (so that a change of the
// statements' parameters or columns that the generator papers over shows
// here), and the lean ceiling.

func pgbenchPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench"); len(m) > 0 {
		return m[len(m)-1]
	}
	t.Fatal("pgbench is missing: install the PostgreSQL client (Debian: apt-get install -y postgresql-client)")
	return ""
}

func runPgbench(t *testing.T, pgbench, script, dbURL string, env ...string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "script.sql")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pgbench, "-n", "-M", "prepared", "-c", "2", "-j", "1", "-t", "25", "-f", path, dbURL)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "number of failed transactions: 0") {
		t.Fatalf("pgbench: %v\n%s", err, out)
	}
}

func seqValue(t *testing.T, conn *pgx.Conn, seq string) int64 {
	t.Helper()
	var v int64
	if err := conn.QueryRow(context.Background(), "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM "+seq).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestClaimReleaseScriptRuns(t *testing.T) {
	t.Parallel()
	pgbench := pgbenchPath(t)
	script, _, err := claimReleaseScriptDefaults("../../../queries")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dbURL := testdb.NewURL(t)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := loadTokensSQL(ctx, conn, 100); err != nil {
		t.Fatalf("the suite's loader no longer fits the schema: %v", err)
	}
	before := seqValue(t, conn, "lease_id_seq")
	runPgbench(t, pgbench, script, dbURL)
	if got := seqValue(t, conn, "lease_id_seq") - before; got != 50 {
		t.Errorf("50 cycles claimed %d leases, want 50", got)
	}
	var leased int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM tokens WHERE lease_id IS NOT NULL").Scan(&leased); err != nil {
		t.Fatal(err)
	}
	if leased != 0 {
		t.Errorf("%d tokens still leased after 50 claim + release cycles: the release did not take the claim's token and lease id", leased)
	}
}

func TestLeanScripts(t *testing.T) {
	t.Parallel()
	pgbench := pgbenchPath(t)
	setup, vacuums, err := leanSetupSQL("../lean/setup.sql", 100)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(setup, "generate_series(1, 100)") || len(vacuums) != 1 {
		t.Fatalf("setup.sql: :n not replaced or VACUUM not split off (vacuums %q)", vacuums)
	}
	cycle, err := os.ReadFile("../lean/cycle_audit.sql")
	if err != nil {
		t.Fatal(err)
	}
	// In a schema of its own beside the service's tables, and only there: with
	// public on the path, setup.sql's "drop table if exists tokens" would
	// reach the service's table.
	ctx := context.Background()
	dbURL := testdb.NewURL(t)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA lean; SET search_path = lean;\n"+setup); err != nil {
		t.Fatal(err)
	}
	for _, v := range vacuums {
		if _, err := conn.Exec(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	runPgbench(t, pgbench, string(cycle), dbURL, "PGOPTIONS=-c search_path=lean")
	if got := seqValue(t, conn, "lean.lease_seq"); got != 50 {
		t.Errorf("50 cycles claimed %d leases, want 50", got)
	}
	var leased, events int64
	if err := conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM lean.tokens WHERE state <> 0), (SELECT count(*) FROM lean.ev)").Scan(&leased, &events); err != nil {
		t.Fatal(err)
	}
	if leased != 0 || events != 100 {
		t.Errorf("after 50 cycles: %d tokens leased (want 0), %d audit rows (want 100)", leased, events)
	}
}

func TestStatementDefaults(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	q := `-- name: Other :one
SELECT 1;

-- name: Claim :one
-- Its comment.
SELECT sqlc.arg('pool_id')::int, sqlc.narg('who')::text, sqlc.arg('n')::bigint,
       sqlc.arg('on')::boolean, sqlc.arg('pool_id')::int;

-- name: Next :exec
SELECT 2;
`
	if err := os.WriteFile(filepath.Join(dir, "sub", "q.sql"), []byte(q), 0o644); err != nil {
		t.Fatal(err)
	}
	body, defaulted, err := statement(dir, "Claim", map[string]string{"pool_id": "7"})
	if err != nil {
		t.Fatal(err)
	}
	want := "SELECT 7::int, NULL::text, 1::bigint,\n       false::boolean, 7::int"
	if body != want {
		t.Errorf("body\n%s\nwant\n%s", body, want)
	}
	if len(defaulted) != 3 {
		t.Errorf("defaulted %q, want who, n and on", defaulted)
	}
	if _, _, err := statement(dir, "Missing", nil); err == nil {
		t.Error("a missing query gave no error")
	}
}
