package events_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/events"
)

// change bumps a token's version and logs the change in one statement, as the
// service's statements do: it waits for the token's row lock.
func change(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, token string) (events.Position, int64, error) {
	var p events.Position
	var v int64
	err := q.QueryRow(ctx, `
WITH t AS (UPDATE tokens SET version = version + 1 WHERE pool_id = 1 AND value = $1 RETURNING id, value, version)
INSERT INTO token_events (pool_id, kind, token_id, token, pod, version)
SELECT 1, 'kept_alive', id, value, 'test', version FROM t RETURNING xid, id, version`, token).Scan(&p.Xid, &p.ID, &v)
	return p, v, err
}

func addTokens(t *testing.T, pool *pgxpool.Pool, values ...string) {
	t.Helper()
	for _, v := range values {
		if _, err := pool.Exec(context.Background(),
			`INSERT INTO tokens (pool_id, value, alive_until) VALUES (1, $1, now() + interval '1 hour')`, v); err != nil {
			t.Fatal(err)
		}
	}
}

func xact(t *testing.T, tx pgx.Tx) int64 {
	t.Helper()
	var x int64
	if err := tx.QueryRow(context.Background(), "SELECT pg_current_xact_id()::text::bigint").Scan(&x); err != nil {
		t.Fatal(err)
	}
	return x
}

// A transaction (slow) takes its xid, then waits for a token's row lock held
// by a younger transaction (fast), which changes the token and commits
// first; slow then changes the token too. In (xid, id) order slow's change
// comes first. The stream, a resume from before both, and a resume from
// every id the stream handed out deliver the token's changes in version
// order, and never skip a row. With a transaction between the two xids still
// open when slow commits, slow's row is final before fast's: the reader must
// hold it back until fast's arrives.
func TestTokenChangesInVersionOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		between bool // a transaction with an xid between slow's and fast's, open past slow's commit
		batch   int
	}{{"same read", false, 1000}, {"held back between", true, 1000}, {"small reads", false, 2}, {"held back, small reads", true, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, pool := startBus(t, events.Config{PollInterval: 20 * time.Millisecond, BatchSize: tc.batch})
			ctx := context.Background()
			addTokens(t, pool, "k", "a", "z")
			sub, start, err := b.Subscribe(ctx, events.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()

			slow := begin(t, pool)
			slowXid := xact(t, slow)
			if _, _, err := change(ctx, slow, "a"); err != nil { // another token, before the wait
				t.Fatal(err)
			}
			var mid pgx.Tx
			if tc.between {
				mid = begin(t, pool)
				xact(t, mid)
			}
			fast := begin(t, pool)
			if _, _, err := change(ctx, fast, "z"); err != nil {
				t.Fatal(err)
			}
			fastPos, fastV, err := change(ctx, fast, "k")
			if err != nil {
				t.Fatal(err)
			}
			type result struct {
				pos events.Position
				v   int64
				err error
			}
			slowDone := make(chan result, 1)
			go func() {
				p, v, err := change(ctx, slow, "k") // waits for fast's row lock
				slowDone <- result{p, v, err}
			}()
			apptest.Eventually(t, 20*time.Second, "slow to wait for the row lock", func() bool {
				var n int
				err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
				return err == nil && n == 1
			})
			commit(t, fast)
			r := <-slowDone
			if r.err != nil {
				t.Fatal(r.err)
			}
			if !(r.pos.Xid == slowXid && r.pos.Before(fastPos) && r.v == fastV+1) {
				t.Fatalf("setup: slow %v v%d, fast %v v%d: want slow first in log order with the later version", r.pos, r.v, fastPos, fastV)
			}
			commit(t, slow)
			b.Changed()
			if tc.between {
				// slow's rows are final, fast's held back behind mid.
				// The reader asks the database several times meanwhile (reads,
				// or horizon checks once it has read all it may).
				queries := b.Stats().Queries
				apptest.Eventually(t, 20*time.Second, "the reader to look at the log", func() bool { return b.Stats().Queries >= queries+3 })
				commit(t, mid)
			}
			tx := begin(t, pool)
			insertEvent(t, tx, "sentinel")
			commit(t, tx)
			b.Changed()

			// (a) the live stream.
			live := receiveUntil(t, sub, "sentinel")
			checkOrder(t, "live", live)
			if len(live) != 5 {
				t.Fatalf("live: %d events, want 5: %s", len(live), describe(live))
			}
			cur, err := b.Cursor(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// (b) a resume from before both changes.
			resumed := readAll(t, b, start, cur, tc.batch)
			checkOrder(t, "resume", resumed)
			samePositions(t, "resume", resumed, live)
			// (c) a resume from every id the stream handed out.
			for i, ev := range live {
				got := append(append([]events.Event(nil), live[:i+1]...), readAll(t, b, ev.Mark, cur, tc.batch)...)
				got = dedupe(got)
				checkOrder(t, fmt.Sprintf("resume from id %v (event %d)", ev.Mark, i), got)
				samePositions(t, fmt.Sprintf("resume from id %v (event %d)", ev.Mark, i), got, live)
			}
		})
	}
}

// readAll reads the log after after and up to until as a resumed stream does.
func readAll(t *testing.T, b *events.Bus, after, until events.Position, batch int) []events.Event {
	t.Helper()
	var evs []events.Event
	for after.Before(until) {
		c, err := b.ReadUpTo(context.Background(), after, until, batch)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, c.Events...)
		after = c.Cursor
		if !c.More {
			break
		}
	}
	return evs
}

// checkOrder asserts that each token's versions ascend, each once, and that
// marks never go back.
func checkOrder(t *testing.T, what string, evs []events.Event) {
	t.Helper()
	last := map[string]int64{}
	var mark events.Position
	for _, ev := range evs {
		if ev.Version != nil {
			if v, ok := last[ev.Token]; ok && *ev.Version <= v {
				t.Fatalf("%s: token %s version %d after %d: %s", what, ev.Token, *ev.Version, v, describe(evs))
			}
			last[ev.Token] = *ev.Version
		}
		if ev.Mark.Before(mark) && what == "live" {
			t.Fatalf("%s: mark %v after %v", what, ev.Mark, mark)
		}
		mark = ev.Mark
	}
}

// samePositions asserts that got holds exactly the rows of want.
func samePositions(t *testing.T, what string, got, want []events.Event) {
	t.Helper()
	set := map[events.Position]bool{}
	for _, ev := range got {
		set[ev.Pos] = true
	}
	for _, ev := range want {
		if !set[ev.Pos] {
			t.Fatalf("%s: row %v (%s) skipped: got %s", what, ev.Pos, ev.Token, describe(got))
		}
	}
	if len(set) != len(want) {
		t.Fatalf("%s: %d rows, want %d: %s", what, len(set), len(want), describe(got))
	}
}

// dedupe drops the rows seen before, as a client does by pos.
func dedupe(evs []events.Event) []events.Event {
	seen := map[events.Position]bool{}
	var out []events.Event
	for _, ev := range evs {
		if !seen[ev.Pos] {
			seen[ev.Pos] = true
			out = append(out, ev)
		}
	}
	return out
}

func describe(evs []events.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		v := int64(0)
		if ev.Version != nil {
			v = *ev.Version
		}
		fmt.Fprintf(&b, "[%s v%d pos %v id %v] ", ev.Token, v, ev.Pos, ev.Mark)
	}
	return b.String()
}
