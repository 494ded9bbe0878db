package events_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

// A client that reconnects with Last-Event-ID gets exactly the events it
// missed (from the log), then the live stream, without a gap or a
// duplicate at the switch; on another pod too.
func TestResumeWithLastEventID(t *testing.T) {
	t.Parallel()
	pods := apptest.NewPods(t, 2)
	a, b := pods[0], pods[1]
	a.Generate(t, 1)

	s1 := openStream(t, a, "/tokens/events?kind=assigned,unblocked", "")
	var first []apptest.Lease
	for range 3 {
		l := a.Assign(t, nil)
		a.Unblock(t, l)
		first = append(first, l)
	}
	got := s1.collect(t, 20*time.Second, func(ev sseEvent) bool {
		return ev.Event == "unblocked" && ev.leaseID(t) == first[2].LeaseID
	})
	if len(got) != 6 {
		t.Fatalf("first stream: %d events, want 6", len(got))
	}
	resumeAfter := got[2] // the second assignment: three events were "lost"
	s1.close()

	// Changes while the client is away.
	var missed []opKey
	for _, ev := range got[3:] {
		missed = append(missed, opKey{ev.Event, ev.leaseID(t)})
	}
	for range 4 {
		l := a.Assign(t, nil)
		a.Unblock(t, l)
		missed = append(missed, opKey{"assigned", l.LeaseID}, opKey{"unblocked", l.LeaseID})
	}

	for _, tc := range []struct {
		name string
		pod  *apptest.Pod
		path string
		hdr  string
	}{
		{"header, same pod", a, "/tokens/events?kind=assigned,unblocked", resumeAfter.ID},
		{"header, other pod", b, "/tokens/events?kind=assigned,unblocked", resumeAfter.ID},
		{"query parameter", b, "/tokens/events?kind=assigned,unblocked&last_event_id=" + resumeAfter.ID, ""},
	} {
		s := openStream(t, tc.pod, tc.path, tc.hdr)
		back := s.collect(t, 20*time.Second, func(ev sseEvent) bool {
			return opKey{ev.Event, ev.leaseID(t)} == missed[len(missed)-1]
		})
		if len(back) != len(missed) {
			t.Fatalf("%s: %d events, want the %d missed", tc.name, len(back), len(missed))
		}
		for i, ev := range back {
			if k := (opKey{ev.Event, ev.leaseID(t)}); k != missed[i] {
				t.Fatalf("%s: event %d is %v, want %v", tc.name, i, k, missed[i])
			}
		}
		// The switch to live: the next change is the next event.
		l := a.Assign(t, nil)
		if ev := s.next(t, 20*time.Second); ev.Event != "assigned" || ev.leaseID(t) != l.LeaseID {
			t.Fatalf("%s: live event %s %s, want assigned %d", tc.name, ev.Event, ev.Data, l.LeaseID)
		}
		a.Unblock(t, l)
		missed = append(missed, opKey{"assigned", l.LeaseID}, opKey{"unblocked", l.LeaseID})
		s.close()
	}
}

// A resume with a kind filter returns only that kind; the ids it carries
// resume again correctly.
func TestResumeFiltered(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t)
	pod.Generate(t, 1)
	s := openStream(t, pod, "/tokens/events?kind=unblocked", "")
	l1 := pod.Assign(t, nil)
	pod.Unblock(t, l1)
	ev1 := s.next(t, 20*time.Second)
	s.close()
	if ev1.Event != "unblocked" || ev1.leaseID(t) != l1.LeaseID {
		t.Fatalf("got %s %s", ev1.Event, ev1.Data)
	}
	l2 := pod.Assign(t, nil)
	pod.Unblock(t, l2)
	s2 := openStream(t, pod, "/tokens/events?kind=unblocked", ev1.ID)
	if ev := s2.next(t, 20*time.Second); ev.Event != "unblocked" || ev.leaseID(t) != l2.LeaseID {
		t.Fatalf("resumed: %s %s, want unblocked %d", ev.Event, ev.Data, l2.LeaseID)
	}
}

// The data of each event and the refusals of bad requests.
func TestStreamFormatAndRefusals(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t)
	s := openStream(t, pod, "/tokens/events", "")
	tok := pod.Generate(t, 1)[0]
	l := pod.Assign(t, map[string]any{"holder": "worker-7"})
	gen, asg := s.next(t, 20*time.Second), s.next(t, 20*time.Second)
	if gen.Event != "generated" || asg.Event != "assigned" || gen.ID == "" || asg.ID == "" || gen.ID == asg.ID {
		t.Fatalf("events %+v %+v", gen, asg)
	}
	d := asg.payload(t)
	if d["kind"] != "assigned" || d["token"] != tok || d["holder"] != "worker-7" || int64(d["lease_id"].(float64)) != l.LeaseID {
		t.Fatalf("assigned data %s", asg.Data)
	}
	at, err := time.Parse(time.RFC3339Nano, d["at"].(string))
	if err != nil || at.Location() != time.UTC || len(d["at"].(string)) != len("2006-01-02T15:04:05.000000Z") {
		t.Fatalf("at %q: %v", d["at"], err)
	}
	if g := gen.payload(t); g["lease_id"] != nil || g["holder"] != nil {
		t.Fatalf("generated data %s", gen.Data)
	}

	for _, path := range []string{"/tokens/events?kind=assigned,bogus", "/tokens/events?last_event_id=x"} {
		r := pod.Call(t, "GET", path, nil)
		if r.Status != http.StatusBadRequest || r.ErrorCode(t) != "invalid_request" {
			t.Fatalf("%s: %d %s", path, r.Status, r.Body)
		}
	}
}

// A backlog of several read batches is copied from the log in full, in
// order, before the stream goes live.
func TestResumeLongBacklog(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t)
	s := openStream(t, pod, "/tokens/events?kind=generated", "")
	pod.Generate(t, 1)
	from := s.next(t, 20*time.Second).ID
	s.close()
	var want []string
	for _, n := range []int{2500, 700, 800} {
		want = append(want, pod.Generate(t, n)...)
	}
	s2 := openStream(t, pod, "/tokens/events?kind=generated", from)
	for i, tok := range want {
		ev := s2.next(t, 20*time.Second)
		if got := ev.payload(t)["token"]; got != tok {
			t.Fatalf("event %d: token %v, want %v", i, got, tok)
		}
	}
}
