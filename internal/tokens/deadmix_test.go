package tokens_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tokenlease/tokenlease/internal/tokens"
)

// Dead-but-unswept rows never make a claim or a sweep batch read in
// proportion to them (issue 9, item 5). The pool holds 50k dead rows with
// lapsed leases, 20k dead free rows and 1k live free tokens (scaled down from
// the 1M pool of the report). Each statement is run under EXPLAIN (ANALYZE,
// BUFFERS), with the custom plan and with the generic plan the batched
// statements run with, and must read a bounded number of buffers.
func TestDeadRowsKeepClaimsAndSweepsBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := tokens.Setup(t, func(s *tokens.Settings) { s.Batching = false })
	url := b.Conns.Config().ConnString()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`INSERT INTO tokens (pool_id, value, alive_until, lease_id, lease_ttl, lease_expires_at)
		 SELECT 1, 'dead-leased-' || i, now() - interval '1 minute', nextval('lease_id_seq'), interval '1 minute',
		        now() - interval '2 minutes' - i * interval '1 millisecond'
		 FROM generate_series(1, 50000) i`,
		`INSERT INTO tokens (pool_id, value, alive_until) SELECT 1, 'dead-free-' || i, now() - interval '1 minute' FROM generate_series(1, 20000) i`,
		`INSERT INTO tokens (pool_id, value, alive_until) SELECT 1, 'free-' || i, now() + interval '1 hour' FROM generate_series(1, 1000) i`,
		`UPDATE token_counters SET total = 71000, assigned = 50000 WHERE pool_id = 1 AND slot = 0`,
		`VACUUM (ANALYZE, INDEX_CLEANUP ON) tokens`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	const bound = 2000 // buffers; 50k dead rows sit on about 1,000 heap pages

	batchArgs := "('{60000,60000,60000,60000,60000,60000,60000,60000}'::bigint[], '{1,1,1,1,1,1,1,1}'::int[], '{\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"}'::text[], '{\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"}'::text[], 'test')"
	claims := []struct{ name, args string }{
		{"ClaimRandomFree", "(1, 0.5, 60000, NULL, NULL, 'test')"},
		{"ClaimBatch", batchArgs},
	}
	for _, c := range claims {
		for _, generic := range []bool{false, true} {
			bufs, rows, plan := explain(t, url, queryText(t, c.name), c.args, generic)
			t.Logf("%s (generic %v) with free tokens: %d buffers, %d rows", c.name, generic, bufs, rows)
			if bufs > bound || rows == 0 {
				t.Errorf("%s (generic plan %v) with 1k free tokens among 70k dead rows: %d buffers (bound %d), %d rows claimed\n%s",
					c.name, generic, bufs, bound, rows, plan)
			}
		}
	}

	// No free token left: the live tokens hold lapsed leases, which lapsed
	// after those of the dead rows. The claims' lapsed branch reads a
	// bounded window, and the lapsed sweep tidies its batch of dead rows.
	if _, err := conn.Exec(ctx, `UPDATE tokens SET lease_id = nextval('lease_id_seq'), lease_ttl = interval '1 minute',
		lease_expires_at = now() - interval '1 second' WHERE value LIKE 'free-%'`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "VACUUM (ANALYZE, INDEX_CLEANUP ON) tokens"); err != nil {
		t.Fatal(err)
	}
	for _, c := range claims {
		for _, generic := range []bool{false, true} {
			bufs, _, plan := explain(t, url, queryText(t, c.name), c.args, generic)
			t.Logf("%s (generic %v) with lapsed leases only: %d buffers", c.name, generic, bufs)
			if bufs > bound {
				t.Errorf("%s (generic plan %v) behind 50k dead lapsed leases: %d buffers (bound %d)\n%s", c.name, generic, bufs, bound, plan)
			}
		}
	}
	const batch = 1000
	bufs, _, plan := explain(t, url, queryText(t, "SweepLapsedLeases"), fmt.Sprintf("(1, %d, 'test', 16)", batch), false)
	t.Logf("SweepLapsedLeases of %d: %d buffers", batch, bufs)
	if bufs > 20*batch {
		t.Errorf("a lapsed sweep batch of %d behind 50k dead rows read %d buffers\n%s", batch, bufs, plan)
	}

	// Once the sweeps have removed the dead rows, a claim takes a lapsed
	// lease again.
	svc := b.Svc
	for {
		swept, err := svc.SweepDeadTokens(ctx, 5000)
		if err != nil {
			t.Fatal(err)
		}
		if swept.Most == 0 {
			break
		}
	}
	for range 10 {
		if _, err := svc.Assign(ctx, tokens.AssignRequest{}); err != nil {
			t.Fatalf("assign after the dead sweep: %v", err)
		}
	}
}

// queryText returns the SQL text sqlc generated for the named query.
func queryText(t *testing.T, name string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "db", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)= `(-- name: " + name + " :[a-z]+\n[^`]*)`")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := re.FindSubmatch(b); m != nil {
			return string(m[1])
		}
	}
	t.Fatalf("no generated query %s", name)
	return ""
}

// explain runs query (prepared, with the literal arguments args) under
// EXPLAIN (ANALYZE, BUFFERS) in a transaction it rolls back, with a generic
// or a custom plan, and returns the shared buffers the statement touched,
// the rows it returned, and the plan.
func explain(t *testing.T, url, query, args string, generic bool) (buffers, rows int64, plan string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	mode := "force_custom_plan"
	if generic {
		mode = "force_generic_plan"
	}
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "PREPARE q AS "+query); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // the statement's writes are undone
	var out []byte
	if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE q"+args).Scan(&out); err != nil {
		t.Fatal(err)
	}
	var doc []struct {
		Plan struct {
			Hit  int64 `json:"Shared Hit Blocks"`
			Read int64 `json:"Shared Read Blocks"`
			Rows int64 `json:"Actual Rows"`
		}
	}
	if err := json.Unmarshal(out, &doc); err != nil || len(doc) != 1 {
		t.Fatalf("EXPLAIN output: %v: %s", err, out)
	}
	return doc[0].Plan.Hit + doc[0].Plan.Read, doc[0].Plan.Rows, strings.TrimSpace(string(out))
}
