package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/events"
)

// An idle LISTEN connection is pinged after each quiet spell and kept: the
// pings neither break it nor make the pod reconnect, and notifications
// still arrive afterwards.
func TestListenerSurvivesIdlePings(t *testing.T) {
	t.Parallel()
	b, pool := startBus(t, events.Config{IdlePing: 20 * time.Millisecond, PollInterval: time.Hour})
	sub, _, err := b.Subscribe(context.Background(), events.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	apptest.Eventually(t, 10*time.Second, "the listener to connect", func() bool { return b.Stats().Connections == 1 })
	reads := b.Stats().Reads
	apptest.Eventually(t, 10*time.Second, "three idle pings", func() bool { return b.Stats().IdlePings >= 3 })
	if c := b.Stats().Connections; c != 1 {
		t.Fatalf("%d LISTEN connections after %d idle pings, want 1", c, b.Stats().IdlePings)
	}
	// With the poll an hour away, only the doorbell can bring this event.
	tx := begin(t, pool)
	insertEvent(t, tx, "after-pings")
	commit(t, tx)
	b.Changed()
	got := receiveUntil(t, sub, "after-pings")
	if len(got) != 1 || b.Stats().Reads <= reads {
		t.Fatalf("got %d events", len(got))
	}
}
