package events

import (
	"context"
	"testing"
	"time"
)

func testEvent(xid, id int64, kind string) Event {
	return Event{Pos: Position{Xid: xid, ID: id}, Kind: kind, Token: "t", data: []byte(`{}`)}
}

// mustNext returns the subscription's next event, failing when it has ended
// or none comes.
func mustNext(t *testing.T, s *Subscription) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, ok := s.Next(ctx)
	if !ok {
		t.Fatal("no event: the subscription ended or nothing came")
	}
	return ev
}

func TestHubDeliversInOrderAndFilters(t *testing.T) {
	t.Parallel()
	h := NewHub(16)
	h.Start(Position{Xid: 10})
	ctx := context.Background()
	all, cur, err := h.Subscribe(ctx, Filter{})
	if err != nil || cur != (Position{Xid: 10}) {
		t.Fatalf("Subscribe = %v, %v", cur, err)
	}
	only, _, _ := h.Subscribe(ctx, Filter{Kinds: mustKinds(t, "unblocked")})
	h.Publish([]Event{testEvent(10, 1, KindAssigned), testEvent(10, 2, KindUnblocked), testEvent(11, 3, KindAssigned)})
	for i, want := range []int64{1, 2, 3} {
		if ev := mustNext(t, all); ev.Pos.ID != want {
			t.Fatalf("event %d: got %v", i, ev.Pos)
		}
	}
	if ev := mustNext(t, only); ev.Kind != KindUnblocked {
		t.Fatalf("filtered subscriber got %s", ev.Kind)
	}
	if c, _ := h.Cursor(ctx); c != (Position{11, 3}) {
		t.Fatalf("cursor %v", c)
	}
	// A late subscriber starts at the cursor.
	_, cur, _ = h.Subscribe(ctx, Filter{})
	if cur != (Position{11, 3}) {
		t.Fatalf("late subscriber starts at %v", cur)
	}
}

// A subscriber that does not keep up is dropped; the others and the
// publisher never wait for it.
func TestHubDropsSlowSubscriber(t *testing.T) {
	t.Parallel()
	h := NewHub(2)
	h.Start(Position{})
	ctx := context.Background()
	slow, _, _ := h.Subscribe(ctx, Filter{})
	fast, _, _ := h.Subscribe(ctx, Filter{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := int64(1); i <= 5; i++ {
			h.Publish([]Event{testEvent(1, i, KindAssigned)})
			ev, ok := fast.Next(ctx)
			if !ok || ev.Pos.ID != i {
				t.Errorf("fast subscriber got %v, want id %d", ev.Pos, i)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("publish blocked on a slow subscriber")
	}
	var got []int64
	for {
		ev, ok := slow.Next(ctx)
		if !ok {
			break
		}
		got = append(got, ev.Pos.ID)
	}
	if len(got) != 2 || got[0] != 1 || got[1] != 2 || !slow.Dropped() {
		t.Fatalf("slow subscriber got %v, dropped %v; want [1 2] and dropped", got, slow.Dropped())
	}
	if fast.Dropped() || h.Subscribers() != 1 {
		t.Fatalf("fast dropped %v, subscribers %d", fast.Dropped(), h.Subscribers())
	}
	slow.Close() // harmless after a drop
}

// A subscription's queue grows as far as its subscriber lags and no
// further: Take returns the events in order and lets a large array go.
func TestHubQueueGrowsAndShrinks(t *testing.T) {
	t.Parallel()
	h := NewHub(1000)
	h.Start(Position{})
	s, _, _ := h.Subscribe(context.Background(), Filter{})
	if cap(s.queue) != 0 {
		t.Fatalf("an idle subscription holds room for %d events", cap(s.queue))
	}
	var batch []Event
	for i := int64(1); i <= 500; i++ {
		batch = append(batch, testEvent(1, i, KindAssigned))
	}
	h.Publish(batch)
	<-s.Ready()
	got, open := s.Take(nil)
	if !open || len(got) != 500 || got[0].Pos.ID != 1 || got[499].Pos.ID != 500 {
		t.Fatalf("Take: %d events (open %v)", len(got), open)
	}
	if cap(s.queue) > queueKeep {
		t.Fatalf("after Take the queue keeps room for %d events", cap(s.queue))
	}
}

func TestHubClose(t *testing.T) {
	t.Parallel()
	h := NewHub(4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A subscriber that comes before the reader's first cursor waits for it.
	type result struct {
		s   *Subscription
		err error
	}
	early := make(chan result, 1)
	go func() {
		s, _, err := h.Subscribe(ctx, Filter{})
		early <- result{s, err}
	}()
	h.Start(Position{Xid: 5})
	r := <-early
	if r.err != nil {
		t.Fatal(r.err)
	}
	h.Close()
	if _, ok := r.s.Next(ctx); ok || r.s.Dropped() {
		t.Fatal("close must end subscriptions, not as a drop")
	}
	if _, _, err := h.Subscribe(ctx, Filter{}); err != ErrClosed {
		t.Fatalf("Subscribe after close: %v", err)
	}
	h.Publish([]Event{testEvent(6, 1, KindAssigned)}) // ignored, no panic
	// A hub closed before it started does not keep subscribers waiting.
	h2 := NewHub(4)
	h2.Close()
	if _, _, err := h2.Subscribe(ctx, Filter{}); err != ErrClosed {
		t.Fatalf("Subscribe on a hub closed before start: %v", err)
	}
}

func mustKinds(t *testing.T, v ...string) KindSet {
	t.Helper()
	s, err := ParseKinds(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
