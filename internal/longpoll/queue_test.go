package longpoll

import (
	"testing"

	"github.com/tokenlease/tokenlease/internal/events"
)

func TestFreedIn(t *testing.T) {
	t.Parallel()
	ev := func(kind, token string) events.Event { return events.Event{Pool: "a", Kind: kind, Token: token} }
	batch := []events.Event{
		ev(events.KindUnblocked, "a"),                              // freed
		ev(events.KindReleased, "b"), ev(events.KindAssigned, "b"), // a claim took a lapsed lease: not free
		ev(events.KindGenerated, "c"), ev(events.KindGenerated, "d"), ev(events.KindDeleted, "d"),
		ev(events.KindKeptAlive, "e"),
		ev(events.KindAssigned, "f"), ev(events.KindUnblocked, "f"), // free again at the end
		// The same value in another pool is another token.
		{Pool: "b", Kind: events.KindUnblocked, Token: "b"},
		{Pool: "b", Kind: events.KindGenerated, Token: "a"}, {Pool: "b", Kind: events.KindAssigned, Token: "a"},
	}
	got := freedIn(batch)
	if len(got) != 2 || got["a"] != 3 || got["b"] != 1 {
		t.Fatalf("freedIn = %v, want a: 3 (a, c, f), b: 1 (b)", got)
	}
}
