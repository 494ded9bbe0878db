package events

import (
	"context"
	"testing"
	"time"
)

// An idle LISTEN connection is pinged after each quiet spell and kept: the
// pings neither break it nor make the pod reconnect, and notifications
// still arrive afterwards.
func TestListenerSurvivesIdlePings(t *testing.T) {
	t.Parallel()
	b, pool := startBus(t, Config{IdlePing: 20 * time.Millisecond, PollInterval: time.Hour})
	sub, _, err := b.Subscribe(context.Background(), KindSet{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	eventually(t, 10*time.Second, "the listener to connect", func() bool { return b.Stats().Connections == 1 })
	reads := b.Stats().Reads
	time.Sleep(200 * time.Millisecond) // let several idle pings pass (this sleep is the subject, not a synchronisation)
	if c := b.Stats().Connections; c != 1 {
		t.Fatalf("%d LISTEN connections after idle pings, want 1", c)
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
