package httpapi_test

// What the tests read straight from a pod's database: the audit trail, row
// counts, and a snapshot of all state to prove that a request changed nothing.

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

// auditEvent is one row of token_events.
type auditEvent struct {
	ID      int64
	At      time.Time
	Kind    string
	TokenID int64
	Token   string
	LeaseID *int64
	Holder  *string
	Pod     string
}

// auditTrail returns the audit rows of the given kinds (all when none),
// in the order they were written.
func auditTrail(t testing.TB, pod *apptest.Pod, kinds ...string) []auditEvent {
	t.Helper()
	rows, err := pod.App.Pool.Query(context.Background(), `
		SELECT id, at, kind, token_id, token, lease_id, holder, pod
		FROM token_events
		WHERE coalesce(cardinality($1::text[]), 0) = 0 OR kind = ANY($1::text[])
		ORDER BY id`, kinds)
	if err != nil {
		t.Fatalf("read audit trail: %v", err)
	}
	events, err := pgx.CollectRows(rows, pgx.RowToStructByPos[auditEvent])
	if err != nil {
		t.Fatalf("read audit trail: %v", err)
	}
	return events
}

// auditOf returns the audit rows of one token value, in order.
func auditOf(t testing.TB, pod *apptest.Pod, token string) []auditEvent {
	t.Helper()
	var out []auditEvent
	for _, e := range auditTrail(t, pod) {
		if e.Token == token {
			out = append(out, e)
		}
	}
	return out
}

func kindsOf(events []auditEvent) []string {
	kinds := make([]string, len(events))
	for i, e := range events {
		kinds[i] = e.Kind
	}
	return kinds
}

// queryInt runs a query that returns one integer.
func queryInt(t testing.TB, pod *apptest.Pod, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pod.App.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// dbSnapshot renders every row of tokens, the size of the audit trail and the
// counters as text, so that two snapshots are equal exactly when nothing
// changed.
func dbSnapshot(t testing.TB, pod *apptest.Pod) string {
	t.Helper()
	var s string
	err := pod.App.Pool.QueryRow(context.Background(), `
		SELECT concat_ws(E'\n',
			(SELECT string_agg(concat_ws('|', id, value, imported, sort_key, lease_id, lease_ttl,
			                             lease_expires_at, holder, alive_until, created_at), E'\n' ORDER BY id)
			   FROM tokens),
			(SELECT 'events ' || count(*) || ' max ' || coalesce(max(id), 0) FROM token_events),
			(SELECT 'counters ' || sum(total) || ' ' || sum(assigned) FROM token_counters))`).Scan(&s)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return s
}
