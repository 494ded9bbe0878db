package events_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

// opKey names one expected event: its kind and lease id.
type opKey struct {
	kind    string
	leaseID int64
}

// Three pods on one database: every change made through A reaches the
// streams of B and C, each exactly once and in order. The test reports the
// latency from the change's request to its delivery (an upper bound of
// commit-to-delivery: the request also waits for the statement).
func TestThreePodsSeeEachOthersChanges(t *testing.T) {
	t.Parallel()
	pods := apptest.NewPods(t, 3)
	a, b, c := pods[0], pods[1], pods[2]
	a.Generate(t, 1)
	streams := map[string]*stream{
		"B": openStream(t, b, "/tokens/events?kind=assigned,unblocked", ""),
		"C": openStream(t, c, "/tokens/events?kind=assigned,unblocked", ""),
	}

	const cycles = 200
	sent := make(map[opKey]time.Time, 2*cycles)
	var order []opKey
	var lastLease int64
	for range cycles {
		start := time.Now()
		l := a.Assign(t, nil)
		sent[opKey{"assigned", l.LeaseID}] = start
		start = time.Now()
		a.Unblock(t, l)
		sent[opKey{"unblocked", l.LeaseID}] = start
		order = append(order, opKey{"assigned", l.LeaseID}, opKey{"unblocked", l.LeaseID})
		lastLease = l.LeaseID
	}

	for name, s := range streams {
		got := s.collect(t, 30*time.Second, func(ev sseEvent) bool {
			return ev.Event == "unblocked" && ev.leaseID(t) == lastLease
		})
		if len(got) != len(order) {
			t.Fatalf("pod %s: %d events, want %d", name, len(got), len(order))
		}
		lat := make([]time.Duration, 0, len(got))
		for i, ev := range got {
			k := opKey{ev.Event, ev.leaseID(t)}
			if k != order[i] {
				t.Fatalf("pod %s: event %d is %v, want %v", name, i, k, order[i])
			}
			lat = append(lat, ev.At.Sub(sent[k]))
		}
		t.Logf("pod %s: %d events, request-to-delivery p50 %s, p99 %s, max %s", name, len(lat),
			percentile(lat, 50), percentile(lat, 99), percentile(lat, 100))
	}
}

// Changes made through every pod reach every stream.
func TestEveryPodSeesEveryPod(t *testing.T) {
	t.Parallel()
	pods := apptest.NewPods(t, 3)
	var streams []*stream
	for _, p := range pods {
		streams = append(streams, openStream(t, p, "/tokens/events?kind=generated", ""))
	}
	var want []string
	for _, p := range pods {
		want = append(want, p.Generate(t, 2)...)
	}
	for i, s := range streams {
		got := s.collect(t, 30*time.Second, func(ev sseEvent) bool { return ev.payload(t)["token"] == want[len(want)-1] })
		if len(got) != len(want) {
			t.Fatalf("stream %d got %d events, want %d", i, len(got), len(want))
		}
		for j, ev := range got {
			if tok := ev.payload(t)["token"]; tok != want[j] {
				t.Fatalf("stream %d event %d: token %v, want %v", i, j, tok, fmt.Sprint(want[j]))
			}
		}
	}
}
