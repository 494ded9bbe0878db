package longpoll

import (
	"testing"

	"github.com/tokenlease/tokenlease/internal/events"
)

func TestFreedIn(t *testing.T) {
	t.Parallel()
	ev := func(kind, token string) events.Event { return events.Event{Kind: kind, Token: token} }
	batch := []events.Event{
		ev(events.KindUnblocked, "a"),                              // freed
		ev(events.KindReleased, "b"), ev(events.KindAssigned, "b"), // a claim took a lapsed lease: not free
		ev(events.KindGenerated, "c"), ev(events.KindGenerated, "d"), ev(events.KindDeleted, "d"),
		ev(events.KindKeptAlive, "e"),
		ev(events.KindAssigned, "f"), ev(events.KindUnblocked, "f"), // free again at the end
	}
	if n := freedIn(batch); n != 3 {
		t.Fatalf("freedIn = %d, want 3 (a, c, f)", n)
	}
}
