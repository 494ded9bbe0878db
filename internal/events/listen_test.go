package events_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/tokens"
)

// killConnections terminates the events layer's connections (LISTEN and
// log reader) of every pod on pod's database and returns how many LISTEN
// connections it found.
func killConnections(t *testing.T, pod *apptest.Pod) int {
	t.Helper()
	var n int
	err := pod.App.Pool.QueryRow(context.Background(), `
		SELECT count(*) FILTER (WHERE application_name = 'tokenlease-listen') FROM (
			SELECT application_name, pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database()
			  AND application_name IN ('tokenlease-listen', 'tokenlease-reader')) k`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The LISTEN connections (and the log readers' connections) are killed
// three times while changes go on: the pods reconnect and catch up from the
// log, and the stream has every committed change, in order, none twice. How
// many changes a loaded machine makes meanwhile does not matter; that some
// are made while each kill is being recovered from does, and is waited for.
func TestListenConnectionKilled(t *testing.T) {
	t.Parallel()
	pods := apptest.NewPods(t, 2)
	a, b := pods[0], pods[1]
	a.Generate(t, 3)
	s := openStream(t, b, "/tokens/events?kind=assigned,unblocked", "")
	apptest.Eventually(t, 10*time.Second, "both pods to listen", func() bool {
		return a.App.Events.Stats().Connections == 1 && b.App.Events.Stats().Connections == 1
	})

	// Changes go on through A's service in the background, cycle after cycle.
	stop := make(chan struct{})
	changes := make(chan []opKey, 1)
	errs := make(chan error, 1)
	var made atomic.Int64 // committed cycles
	go func() {
		var done []opKey
		defer func() { changes <- done }()
		ctx := context.Background()
		for {
			select {
			case <-stop:
				return
			default:
			}
			l, err := a.App.Service.Assign(ctx, tokens.AssignRequest{})
			if err == nil {
				err = a.App.Service.Unblock(ctx, "", l.Token, &l.LeaseID)
			}
			if err != nil {
				errs <- err
				return
			}
			done = append(done, opKey{"assigned", l.LeaseID}, opKey{"unblocked", l.LeaseID})
			made.Add(1)
		}
	}()
	for kill := 1; kill <= 3; kill++ {
		before := made.Load()
		if n := killConnections(t, a); n != 2 {
			t.Fatalf("found %d LISTEN connections, want 2", n)
		}
		apptest.Eventually(t, 20*time.Second, "a change after the kill", func() bool { return made.Load() > before })
		apptest.Eventually(t, 20*time.Second, "both pods to listen again", func() bool {
			return a.App.Events.Stats().Connections == int64(kill+1) && b.App.Events.Stats().Connections == int64(kill+1)
		})
	}
	close(stop)
	want := <-changes
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}

	last := want[len(want)-1]
	got := s.collect(t, 30*time.Second, func(ev sseEvent) bool {
		return opKey{ev.Event, ev.leaseID(t)} == last
	})
	if len(got) != len(want) {
		t.Fatalf("stream has %d events, want %d", len(got), len(want))
	}
	for i, ev := range got {
		if k := (opKey{ev.Event, ev.leaseID(t)}); k != want[i] {
			t.Fatalf("event %d is %v, want %v", i, k, want[i])
		}
	}
	// And nothing more arrives: a change after the check is the next event.
	l := a.Assign(t, nil)
	if ev := s.next(t, 20*time.Second); ev.Event != "assigned" || ev.leaseID(t) != l.LeaseID {
		t.Fatalf("after the check: %s %s, want the new assignment %d", ev.Event, ev.Data, l.LeaseID)
	}
	t.Logf("%d events over 3 kills of the LISTEN and reader connections", len(want))
}
