package httpapi_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

// auditQueries are the SQL statements of docs/AUDIT.md's sql blocks, by the
// first line of the comment that opens each: the test runs the doc's very
// text, so the doc cannot drift from the schema.
func auditQueries(t testing.TB) map[string]string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/AUDIT.md")
	if err != nil {
		t.Fatal(err)
	}
	queries := map[string]string{}
	blocks := strings.Split(string(doc), "```")
	for i := 1; i < len(blocks); i += 2 {
		block, ok := strings.CutPrefix(blocks[i], "sql\n")
		if !ok {
			continue
		}
		for stmt := range strings.SplitSeq(block, ";\n") {
			stmt = strings.TrimSpace(stmt)
			if stmt == "" {
				continue
			}
			first, _, _ := strings.Cut(stmt, "\n")
			title, ok := strings.CutPrefix(first, "-- ")
			if !ok {
				t.Fatalf("docs/AUDIT.md: a query without a comment naming it: %s", stmt)
			}
			queries[title] = stmt
		}
	}
	return queries
}

// docQuery returns the query of docs/AUDIT.md whose comment begins with title.
func docQuery(t testing.TB, queries map[string]string, title string) string {
	t.Helper()
	for k, q := range queries {
		if strings.HasPrefix(k, title) {
			return q
		}
	}
	t.Fatalf("docs/AUDIT.md has no query %q", title)
	return ""
}

// The queries of docs/AUDIT.md answer their questions after a scripted run
// by several keys: who deleted a token, which keys took leases in a pool
// today; and every other query there runs.
func TestAuditQueriesOfTheDocs(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t)
	queries := auditQueries(t)
	wantStatus(t, pod.Call(t, "PUT", "/pools/proxies-eu", nil), 201)
	ops := pod.CreateKey(t, "ops-1", "operator", nil, nil)
	w1 := pod.CreateKey(t, "worker-1", "client", []string{"proxies-eu"}, nil)
	w2 := pod.CreateKey(t, "worker-2", "client", []string{"proxies-eu"}, nil)

	wantStatus(t, pod.CallAs(t, ops.Secret, "POST", "/tokens/import", map[string]any{"tokens": []string{"licence-A-0001"}}), 201)
	wantStatus(t, pod.CallAs(t, ops.Secret, "DELETE", "/tokens/licence-A-0001", nil), 200)
	wantStatus(t, pod.CallAs(t, ops.Secret, "POST", "/pools/proxies-eu/tokens/generate", map[string]any{"count": 3}), 201)
	for _, k := range []apptest.Key{w1, w2, w1} {
		r := pod.CallAs(t, k.Secret, "POST", "/pools/proxies-eu/tokens/assign?holder="+k.Name, nil)
		wantStatus(t, r, 200)
		var l apptest.Lease
		r.JSON(t, &l)
		// The lease records its actor.
		if actor := queryString(t, pod, "SELECT lease_actor FROM tokens WHERE value = $1", l.Token); actor != k.Name {
			t.Errorf("lease of %s records actor %q", k.Name, actor)
		}
	}

	ctx := context.Background()
	rows, err := pod.App.Pool.Query(ctx, docQuery(t, queries, "Who deleted token X"))
	if err != nil {
		t.Fatal(err)
	}
	type deletion struct {
		Actor string
		At    any
		Pod   string
	}
	deletions, err := pgx.CollectRows(rows, pgx.RowToStructByPos[deletion])
	if err != nil {
		t.Fatal(err)
	}
	if len(deletions) != 1 || deletions[0].Actor != "ops-1" {
		t.Errorf("who deleted licence-A-0001: %+v, want ops-1", deletions)
	}

	rows, err = pod.App.Pool.Query(ctx, docQuery(t, queries, "Which actors took leases in pool proxies-eu today"))
	if err != nil {
		t.Fatal(err)
	}
	type taker struct {
		Actor  string
		Leases int64
	}
	takers, err := pgx.CollectRows(rows, pgx.RowToStructByPos[taker])
	if err != nil {
		t.Fatal(err)
	}
	if len(takers) != 2 || takers[0] != (taker{"worker-1", 2}) || takers[1] != (taker{"worker-2", 1}) {
		t.Errorf("which keys took leases in proxies-eu today: %+v, want worker-1: 2, worker-2: 1", takers)
	}

	// The large-log form of a token's history answers as the plain one,
	// for a token that is gone (its value kept by its ending row only).
	history := func(title string) string {
		rows, err := pod.App.Pool.Query(ctx, docQuery(t, queries, title))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(v))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, "\n")
	}
	plain, large := history("Everything that happened to one token of pool default"), history("On a large log, everything")
	if plain != large || strings.Count(plain, "\n") != 1 {
		t.Errorf("history of licence-A-0001:\n%s\nlarge-log form:\n%s\nwant the same two rows (imported, deleted)", plain, large)
	}
	// The log keeps a value only on the rows that start or end a token, and
	// the view resolves every other row's.
	if n := queryInt(t, pod, `SELECT count(*) FROM token_log WHERE token IS NOT NULL AND kind NOT IN ('g', 'i', 'd', 'e')`); n != 0 {
		t.Errorf("%d rows of token_log carry a value they need not", n)
	}
	if n := queryInt(t, pod, `SELECT count(*) FROM token_events WHERE token IS NULL OR pod IS NULL`); n != 0 {
		t.Errorf("%d rows of token_events without a value or a pod", n)
	}

	// Every query of the doc runs against the schema as it is.
	for title, q := range queries {
		rows, err := pod.App.Pool.Query(ctx, q)
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
		}
		if err != nil {
			t.Errorf("docs/AUDIT.md query %q: %v", title, err)
		}
	}
}

func queryString(t testing.TB, pod *apptest.Pod, sql string, args ...any) string {
	t.Helper()
	var s *string
	if err := pod.App.Pool.QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if s == nil {
		return ""
	}
	return *s
}
