package events

import (
	"testing"
)

func TestPositionRoundTripAndOrder(t *testing.T) {
	t.Parallel()
	for _, p := range []Position{{0, 0}, {1, 2}, {9223372036854775807, 9223372036854775807}, {748, 12}} {
		got, err := ParsePosition(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePosition(%q) = %v, %v; want %v", p.String(), got, err, p)
		}
	}
	for _, bad := range []string{"", "1", "-", "1-", "-1", "a-1", "1-b", "1-2-3", "-1-2", "+1-2", "1-+2", "99999999999999999999-1", " 1-2"} {
		if p, err := ParsePosition(bad); err == nil {
			t.Errorf("ParsePosition(%q) = %v, want an error", bad, p)
		}
	}
	ordered := []Position{{1, 5}, {1, 7}, {2, 1}, {3, 0}, {3, 1}}
	for i := range ordered {
		for j := range ordered {
			if got, want := ordered[i].Before(ordered[j]), i < j; got != want {
				t.Errorf("%v.Before(%v) = %v, want %v", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestParseKinds(t *testing.T) {
	t.Parallel()
	all, err := ParseKinds(nil)
	if err != nil || !all.Has(KindExpired) || !all.Has(KindAssigned) {
		t.Fatalf("no filter: %v %v", all, err)
	}
	s, err := ParseKinds([]string{"assigned, unblocked", "released", ""})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range allKinds {
		want := k == KindAssigned || k == KindUnblocked || k == KindReleased
		if s.Has(k) != want {
			t.Errorf("Has(%s) = %v, want %v", k, s.Has(k), want)
		}
	}
	if _, err := ParseKinds([]string{"assigned,bogus"}); err == nil {
		t.Fatal("unknown kind accepted")
	}
}
