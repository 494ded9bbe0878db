package events_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/testdb"
)

// A transaction left open in another session of the same database holds the
// change log back (no row past its xid can be read until it ends), yet a
// token freed on pod A reaches a waiter on pod B at once: waiters also wake
// on the doorbell and retry the claim. While the log stays held back the
// readers poll it slowly, and once the transaction ends the stream delivers
// every change it held back, in order.
func TestLongOpenTransactionWaitersAndStreams(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.NewURL(t)
	a, b := apptest.NewPodOn(t, url), apptest.NewPodOn(t, url)
	s := openStream(t, b, "/tokens/events?kind=assigned,unblocked", "")
	tok := a.Generate(t, 1)[0]
	held := a.Assign(t, nil)
	if ev := s.next(t, 20*time.Second); ev.Event != "assigned" || ev.leaseID(t) != held.LeaseID {
		t.Fatalf("got %s %s", ev.Event, ev.Data)
	}

	blocker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close(ctx)
	if _, err := blocker.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := blocker.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
		t.Fatal(err)
	}

	res := startWaiter(ctx, b, "10s")
	apptest.Eventually(t, 20*time.Second, "the waiter to find no token and sleep", func() bool { return b.App.Waiter.Asleep() == 1 })
	start := time.Now()
	a.Unblock(t, held)
	r := receive(t, res, 30*time.Second)
	latency := time.Since(start)
	if r.status != http.StatusOK || r.lease.Token != tok {
		t.Fatalf("waiter got %d %q after %s, want 200 with the freed token", r.status, r.code, r.took)
	}
	t.Logf("unblock on A to lease on B with a transaction open: %s", latency)
	if latency > 2*time.Second {
		t.Errorf("the waiter was served %s after the unblock, want < 2s", latency)
	}

	// Held back and idle: how often do the readers query the database?
	const window = 3 * time.Second
	time.Sleep(time.Second) // let the readers settle into their held-back rhythm
	qa, qb := a.App.Events.Stats().Queries, b.App.Events.Stats().Queries
	time.Sleep(window)
	perA := float64(a.App.Events.Stats().Queries-qa) / window.Seconds()
	perB := float64(b.App.Events.Stats().Queries-qb) / window.Seconds()
	t.Logf("reader statements per second while held back: pod A (nobody listening) %.1f, pod B (a stream open) %.1f", perA, perB)
	if perB > 5 {
		t.Errorf("pod B's reader ran %.1f statements per second while held back, want at most a few", perB)
	}
	select {
	case ev := <-s.events:
		t.Fatalf("the stream delivered %s %s past the open transaction", ev.Event, ev.Data)
	default:
	}

	if _, err := blocker.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	ended := time.Now()
	got := s.collect(t, 20*time.Second, func(ev sseEvent) bool { return ev.Event == "assigned" })
	t.Logf("held-back events delivered %s after the transaction ended", time.Since(ended))
	if len(got) != 2 || got[0].Event != "unblocked" || got[0].leaseID(t) != held.LeaseID || got[1].leaseID(t) != r.lease.LeaseID {
		t.Fatalf("after the transaction ended the stream delivered %+v, want unblocked %d then assigned %d", got, held.LeaseID, r.lease.LeaseID)
	}
}
