package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/client"
	"github.com/tokenlease/tokenlease/internal/apptest"
)

// TestEventsResumeAcrossCut: the proxy cuts the stream; events made while
// it was down arrive after the reconnect, none lost, none repeated.
func TestEventsResumeAcrossCut(t *testing.T) {
	pod := apptest.NewPod(t)
	px := newProxy(t, pod.URL)
	direct := newClient(t, pod.URL)
	c := newClient(t, px.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	received, done := collect(ctx, c, client.EventsFilter{Kinds: []string{"generated"}})

	var want []string
	generate := func(n int) {
		toks, err := direct.Generate(ctx, "", n)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, toks...)
	}
	// The stream starts "now": generate until the first event shows that it
	// is open.
	apptest.Eventually(t, 20*time.Second, "the stream to open", func() bool {
		if len(received()) > 0 {
			return true
		}
		generate(1)
		time.Sleep(100 * time.Millisecond)
		return len(received()) > 0
	})
	apptest.Eventually(t, 20*time.Second, "the first events", func() bool { return len(received()) == len(want) })
	for round := range 3 {
		px.Cut()
		generate(5) // while the stream is down, or reconnecting
		apptest.Eventually(t, 20*time.Second, fmt.Sprintf("round %d's events", round), func() bool { return len(received()) >= len(want) })
	}
	generate(3)
	apptest.Eventually(t, 20*time.Second, "the last events", func() bool { return len(received()) >= len(want) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var tokens, ids []string
	for _, ev := range received() {
		tokens = append(tokens, ev.Token)
		ids = append(ids, ev.ID)
		if ev.Kind != "generated" || ev.At.IsZero() {
			t.Fatalf("event %+v", ev)
		}
	}
	if !slices.Equal(tokens, want) {
		t.Fatalf("got tokens %v,\nwant %v", tokens, want)
	}
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Fatalf("repeated ids: %v", ids)
	}
}

// TestEventsDedupeAndDropped: a stub that ends the stream with a
// `dropped` event, and on resume sends again an event the client already
// has: the iterator resumes with Last-Event-ID and yields each event once.
func TestEventsDedupeAndDropped(t *testing.T) {
	var mu sync.Mutex
	var lastIDs []string
	srv := newStubServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		n := len(lastIDs)
		mu.Unlock()
		if r.URL.Path != "/pools/p1/tokens/events" || r.URL.Query().Get("kind") != "assigned" {
			http.Error(w, `{"error":{"code":"invalid_request","message":"bad path"}}`, 400)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		ev := func(xid, id int) string {
			return fmt.Sprintf("id: %d-%d\nevent: assigned\ndata: {\"kind\":\"assigned\",\"token\":\"t%d\",\"lease_id\":%d,\n"+
				"data: \"at\":\"2026-11-25T02:41:07.123456Z\"}\n\n", xid, id, id, id)
		}
		switch n {
		case 1:
			fmt.Fprint(w, "retry: 1000\n: ok\n\n"+ev(10, 1)+ev(10, 2)+
				"event: dropped\ndata: {\"last_event_id\":\"10-2\",\"reason\":\"slow_consumer\"}\n\n"+ev(99, 99))
		case 2:
			fmt.Fprint(w, ": ok\n\n"+ev(10, 2)+ev(11, 3)) // 10-2 again: a resume that overlaps
		default:
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	})
	c := newClient(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var ids []string
	for ev, err := range c.Events(ctx, client.EventsFilter{Pools: []string{"p1"}, Kinds: []string{"assigned"}}) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.LeaseID == 0 || ev.Token == "" {
			t.Fatalf("event %+v", ev)
		}
		ids = append(ids, ev.ID)
		if len(ids) == 3 {
			break
		}
	}
	if !slices.Equal(ids, []string{"10-1", "10-2", "11-3"}) {
		t.Fatalf("ids %v", ids)
	}
	mu.Lock()
	defer mu.Unlock()
	if lastIDs[0] != "" || lastIDs[1] != "10-2" {
		t.Fatalf("Last-Event-ID sent: %q", lastIDs)
	}
}

// TestEventsPermanentError: a refused stream yields the error and ends.
func TestEventsPermanentError(t *testing.T) {
	pod := apptest.NewPod(t)
	c := newClient(t, pod.URL)
	n := 0
	for _, err := range c.Events(testContext(t, 20*time.Second), client.EventsFilter{Kinds: []string{"no-such-kind"}}) {
		n++
		if err == nil || !errors.Is(err, client.ErrInvalidRequest) {
			t.Fatalf("got %v", err)
		}
	}
	if n != 1 {
		t.Fatalf("%d yields", n)
	}
}

// TestEventsDropsResentChanges: the server delivered changes of tokens B and
// C ahead of their log order (ids are watermarks, pos their own places), and
// the stream is cut in the middle of that read; the resume from the last id
// sends some of them again. The iterator yields each (token, version) once,
// in version order.
func TestEventsDropsResentChanges(t *testing.T) {
	var mu sync.Mutex
	var lastIDs []string
	ev := func(id, pos, token string, version int) string {
		return fmt.Sprintf("id: %s\nevent: kept_alive\ndata: {\"pos\":%q,\"kind\":\"kept_alive\",\"pool\":\"default\",\"token\":%q,\"version\":%d,\"at\":\"2026-11-25T02:41:07.123456Z\"}\n\n",
			id, pos, token, version)
	}
	// The log holds 10-1 X v1, 10-2 C v2, 10-3 B v2, 10-4 C v1, 10-5 B v1.
	srv := newStubServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		n := len(lastIDs)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		switch n {
		case 1: // cut after C v2, before B v2
			fmt.Fprint(w, ": ok\n\n"+ev("10-1", "10-1", "X", 1)+ev("10-1", "10-4", "C", 1)+ev("10-1", "10-5", "B", 1)+ev("10-2", "10-2", "C", 2))
		case 2: // the rows after 10-2 again, arranged
			fmt.Fprint(w, ": ok\n\n"+ev("10-2", "10-5", "B", 1)+ev("10-2", "10-4", "C", 1)+ev("10-5", "10-3", "B", 2)+ev("10-6", "10-6", "C", 3))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		default:
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	})
	c := newClient(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []string
	for ev, err := range c.Events(ctx, client.EventsFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s%d", ev.Token, ev.Version))
		if len(got) == 6 {
			break
		}
	}
	if want := []string{"X1", "C1", "B1", "C2", "B2", "C3"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if lastIDs[1] != "10-2" {
		t.Fatalf("Last-Event-ID sent: %q", lastIDs)
	}
}
