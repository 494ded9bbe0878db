package events

import (
	"fmt"
	"strings"
	"testing"
)

func row(xid, id int64, token string) Event {
	return Event{Pos: Position{Xid: xid, ID: id}, Mark: Position{Xid: xid, ID: id}, Pool: "default", Token: token}
}

func show(evs []Event) string {
	var b []string
	for _, e := range evs {
		b = append(b, fmt.Sprintf("%s@%d/%d", e.Token, e.Pos.ID, e.Mark.ID))
	}
	return strings.Join(b, " ")
}

// Each token's rows go into the slots it occupies, in id order; each mark is
// the last position up to which every row has been delivered.
func TestArrange(t *testing.T) {
	after := Position{Xid: 1, ID: 0}
	for _, tc := range []struct {
		name string
		rows []Event
		want string // token@pos/mark
	}{
		{"in order", []Event{row(10, 1, "a"), row(10, 2, "b")}, "a@1/1 b@2/2"},
		{"one pair", []Event{row(10, 4, "k"), row(11, 2, "z"), row(11, 3, "k")}, "k@3/0 z@2/0 k@4/3"},
		{"two pairs", []Event{row(10, 1, "x"), row(10, 12, "c"), row(10, 13, "b"), row(11, 4, "c"), row(11, 5, "b")},
			"x@1/1 c@4/1 b@5/1 c@12/12 b@13/5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := show(arrange(after, tc.rows)); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// A row waits for a smaller-id row of its token: in the read (the prefix
// reaches it), held back (wait), or past the read (a larger read finds it).
func TestDeliverable(t *testing.T) {
	final := func(p Position) bool { return p.Xid < 20 }
	for _, tc := range []struct {
		name        string
		rows, ahead []Event
		n           int
		wait        bool
	}{
		{"in order", []Event{row(10, 1, "a"), row(10, 2, "a")}, nil, 2, false},
		{"pair inside", []Event{row(10, 4, "k"), row(11, 3, "k"), row(12, 5, "a")}, nil, 3, false},
		{"held back", []Event{row(10, 1, "a"), row(10, 4, "k"), row(12, 5, "a")}, []Event{row(25, 3, "k")}, 1, true},
		{"past the limit", []Event{row(10, 4, "k")}, []Event{row(15, 3, "k")}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, wait, _ := deliverable(tc.rows, tc.ahead, final)
			if n != tc.n || wait != tc.wait {
				t.Fatalf("got n=%d wait=%v, want n=%d wait=%v", n, wait, tc.n, tc.wait)
			}
		})
	}
}
