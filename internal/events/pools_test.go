package events_test

// Events per pool: every event names its pool, the token's version and the
// actor; /pools/{pool}/tokens/events streams one pool, /tokens/events pool
// default, /events?pool=... the pools named (every pool when none), and a
// Last-Event-ID of any of them resumes any other.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

func putPool(t *testing.T, pod *apptest.Pod, name string) {
	t.Helper()
	if r := pod.Call(t, "PUT", "/pools/"+name, nil); r.Status != http.StatusCreated {
		t.Fatalf("PUT /pools/%s: %d %s", name, r.Status, r.Body)
	}
}

// cycle assigns and unblocks one token in pool and returns its lease id.
func cycle(t *testing.T, pod *apptest.Pod, pool string) int64 {
	t.Helper()
	r := pod.Call(t, "POST", "/pools/"+pool+"/tokens/assign", nil)
	var l apptest.Lease
	r.JSON(t, &l)
	if r.Status != http.StatusOK {
		t.Fatalf("assign in %s: %d %s", pool, r.Status, r.Body)
	}
	if r := pod.Call(t, "POST", "/pools/"+pool+"/tokens/unblock", map[string]any{"token": l.Token, "lease_id": l.LeaseID}); r.Status != http.StatusOK {
		t.Fatalf("unblock in %s: %d %s", pool, r.Status, r.Body)
	}
	return l.LeaseID
}

func poolsOf(t *testing.T, evs []sseEvent) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.payload(t)["pool"].(string))
	}
	return out
}

func TestEventStreamsPerPool(t *testing.T) {
	t.Parallel()
	pods := apptest.NewPods(t, 2)
	a, b := pods[0], pods[1]
	for _, p := range []string{"a", "b", "c"} {
		putPool(t, a, p)
		if r := a.Call(t, "POST", "/pools/"+p+"/tokens/generate", map[string]any{"count": 1}); r.Status != http.StatusCreated {
			t.Fatalf("generate in %s: %d %s", p, r.Status, r.Body)
		}
	}
	a.Generate(t, 1) // pool default

	onlyA := openStream(t, a, "/pools/a/tokens/events?kind=assigned,unblocked", "")
	aAndB := openStream(t, b, "/events?pool=a&pool=b&kind=assigned,unblocked", "")
	all := openStream(t, b, "/events?kind=assigned,unblocked", "")
	def := openStream(t, a, "/tokens/events?kind=assigned,unblocked", "")

	for _, p := range []string{"c", "b", "a", "default"} {
		if p == "default" {
			a.Unblock(t, a.Assign(t, nil))
			continue
		}
		cycle(t, a, p)
	}
	until := func(pool string) func(sseEvent) bool {
		return func(ev sseEvent) bool { return ev.Event == "unblocked" && ev.payload(t)["pool"] == pool }
	}
	if got := strings.Join(poolsOf(t, onlyA.collect(t, 20*time.Second, until("a"))), ","); got != "a,a" {
		t.Errorf("/pools/a/tokens/events delivered pools %s, want a,a", got)
	}
	if got := strings.Join(poolsOf(t, aAndB.collect(t, 20*time.Second, until("a"))), ","); got != "b,b,a,a" {
		t.Errorf("/events?pool=a&pool=b delivered pools %s, want b,b,a,a", got)
	}
	allEvs := all.collect(t, 20*time.Second, until("default"))
	if got := strings.Join(poolsOf(t, allEvs), ","); got != "c,c,b,b,a,a,default,default" {
		t.Errorf("/events delivered pools %s, want every pool", got)
	}
	if got := strings.Join(poolsOf(t, def.collect(t, 20*time.Second, until("default"))), ","); got != "default,default" {
		t.Errorf("/tokens/events delivered pools %s, want default only", got)
	}

	// Every event carries the token's version (generated 1, assigned 2,
	// unblocked 3) and the actor: the test pod's admin key.
	for _, ev := range allEvs {
		p := ev.payload(t)
		want := map[string]float64{"assigned": 2, "unblocked": 3}[ev.Event]
		if p["version"] != want {
			t.Errorf("%s in %s: version %v, want %v", ev.Event, p["pool"], p["version"], want)
		}
		if actor, _ := p["actor"].(string); actor == "" {
			t.Errorf("%s carries no actor: %s", ev.Event, ev.Data)
		}
	}

	// Resume across routes: an id from /events resumes /pools/c/tokens/events
	// on the other pod, and the reverse.
	s := openStream(t, a, "/pools/c/tokens/events", allEvs[0].ID) // after c's assigned
	if ev := s.next(t, 20*time.Second); ev.Event != "unblocked" || ev.payload(t)["pool"] != "c" {
		t.Fatalf("resumed /pools/c/tokens/events: %s %s, want c's unblocked", ev.Event, ev.Data)
	}
	s = openStream(t, b, "/events?pool=a&kind=unblocked", allEvs[0].ID)
	if ev := s.next(t, 20*time.Second); ev.Event != "unblocked" || ev.payload(t)["pool"] != "a" {
		t.Fatalf("resumed /events?pool=a: %s %s, want a's unblocked", ev.Event, ev.Data)
	}

	for _, path := range []string{"/events?pool=nope", "/events?pool=a&pool=nope", "/pools/nope/tokens/events"} {
		r := a.Call(t, "GET", path, nil)
		if r.Status != http.StatusNotFound || r.ErrorCode(t) != "pool_not_found" {
			t.Errorf("GET %s: %d %s, want 404 pool_not_found", path, r.Status, r.Body)
		}
	}
}
