package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/events"
	"github.com/tokenlease/tokenlease/internal/testdb"
)

// startBus runs an events.Bus on a fresh database until the test ends.
func startBus(t *testing.T, cfg events.Config) (*events.Bus, *pgxpool.Pool) {
	t.Helper()
	pool := testdb.NewPool(t)
	// The pod name of the rows these tests write, registered as a pod does
	// at start-up: added on first use inside the tests' open transactions,
	// it would make each wait for the other.
	if _, err := pool.Exec(context.Background(), "SELECT audit_name_id('test')"); err != nil {
		t.Fatal(err)
	}
	b := events.New(pool, cfg)
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, pool
}

// insertEvent writes one change-log row in tx, as the service's statements
// do, and returns its position. The token id is the value's (the reader
// tells tokens apart by id).
func insertEvent(t *testing.T, tx pgx.Tx, token string) events.Position {
	t.Helper()
	var p events.Position
	err := tx.QueryRow(context.Background(),
		`INSERT INTO token_events (pool_id, kind, token_id, token, pod)
		 VALUES (1, 'generated', ('x' || left(md5($1), 15))::bit(60)::bigint, $1, 'test') RETURNING xid, id`,
		token).Scan(&p.Xid, &p.ID)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func begin(t *testing.T, pool *pgxpool.Pool) pgx.Tx {
	t.Helper()
	tx, err := pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) }) //nolint:errcheck // no-op after commit
	return tx
}

func commit(t *testing.T, tx pgx.Tx) {
	t.Helper()
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// receiveUntil collects events from sub until one for token stop arrives.
func receiveUntil(t *testing.T, sub *events.Subscription, stop string) []events.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []events.Event
	for {
		ev, ok := sub.Next(ctx)
		if !ok {
			t.Fatalf("the subscription ended or timed out; got %d events", len(got))
		}
		got = append(got, ev)
		if ev.Token == stop {
			return got
		}
	}
}

// Two transactions commit in the opposite order of their ids: a reader by id
// alone would skip the first. Both arrive exactly once, the later-committing
// one only after its commit (its row is held back until then), in
// (xid, id) order.
func TestOutOfOrderCommitsDeliveredOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// xidFirst makes the first transaction take its xid before the
		// second (but its row id after): the log order is then not the id order.
		xidFirst bool
	}{{"ids in xid order", false}, {"ids against xid order", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, pool := startBus(t, events.Config{PollInterval: 20 * time.Millisecond})
			ctx := context.Background()
			sub, _, err := b.Subscribe(ctx, events.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()

			slow, fast := begin(t, pool), begin(t, pool)
			var slowPos events.Position
			if tc.xidFirst {
				if _, err := slow.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
					t.Fatal(err)
				}
			} else {
				slowPos = insertEvent(t, slow, "slow")
			}
			fastPos := insertEvent(t, fast, "fast")
			if tc.xidFirst {
				slowPos = insertEvent(t, slow, "slow")
				if !(slowPos.ID > fastPos.ID && slowPos.Xid < fastPos.Xid) {
					t.Fatalf("setup: slow %v, fast %v", slowPos, fastPos)
				}
			} else if !slowPos.Before(fastPos) || slowPos.ID > fastPos.ID {
				t.Fatalf("setup: slow %v, fast %v", slowPos, fastPos)
			}
			commit(t, fast)
			b.Changed()

			// The reader asks the database several times while the slow
			// transaction runs (reads, or only horizon checks once it has read
			// all it may): the committed fast row must wait behind it.
			queries := b.Stats().Queries
			apptest.Eventually(t, 20*time.Second, "the reader to look at the log", func() bool { return b.Stats().Queries >= queries+3 })
			select {
			case <-sub.Ready():
				if evs, _ := sub.Take(nil); len(evs) > 0 {
					t.Fatalf("event %v (%s) delivered while an older transaction still runs", evs[0].Pos, evs[0].Token)
				}
			default:
			}

			commit(t, slow)
			b.Changed()
			tx := begin(t, pool)
			insertEvent(t, tx, "sentinel")
			commit(t, tx)
			b.Changed()

			got := receiveUntil(t, sub, "sentinel")
			if len(got) != 3 || got[0].Pos != slowPos || got[1].Pos != fastPos {
				for _, ev := range got {
					t.Logf("got %v %s", ev.Pos, ev.Token)
				}
				t.Fatalf("want exactly slow %v, fast %v, sentinel", slowPos, fastPos)
			}
		})
	}
}

// A long transaction of another database in the cluster takes an xid below
// every later one, but cannot write this database's log: it must not hold
// events back. (One in this database does; see above.)
func TestOtherDatabaseDoesNotHoldEventsBack(t *testing.T) {
	t.Parallel()
	b, pool := startBus(t, events.Config{})
	ctx := context.Background()
	sub, _, err := b.Subscribe(ctx, events.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	other, err := pgx.Connect(ctx, testdb.NewURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	otherTx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer otherTx.Rollback(ctx) //nolint:errcheck // ends the long transaction
	var otherXid int64
	if err := otherTx.QueryRow(ctx, "SELECT pg_current_xact_id()::text::bigint").Scan(&otherXid); err != nil {
		t.Fatal(err)
	}

	tx := begin(t, pool)
	p := insertEvent(t, tx, "behind-a-stranger")
	commit(t, tx)
	b.Changed()
	if p.Xid <= otherXid {
		t.Fatalf("setup: event xid %d, other database's xid %d", p.Xid, otherXid)
	}
	start := time.Now()
	got := receiveUntil(t, sub, "behind-a-stranger")
	if len(got) != 1 || got[0].Pos != p {
		t.Fatalf("got %v", got)
	}
	t.Logf("delivered %s after the commit while another database's transaction ran", time.Since(start))
}
