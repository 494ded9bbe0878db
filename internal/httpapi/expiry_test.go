package httpapi_test

// Deadlines take effect in the very next query: a lapsed lease frees its
// token and a dead token vanishes without waiting for a sweep. The sweeper
// then only tidies rows and writes the audit.

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/config"
)

func withKeepaliveTTL(d time.Duration) apptest.Option {
	return apptest.WithConfig(func(c *config.Config) { c.KeepaliveTTL = config.Duration(d) })
}

func withSweepInterval(d time.Duration) apptest.Option {
	return apptest.WithConfig(func(c *config.Config) { c.SweepInterval = config.Duration(d) })
}

func TestLapsedLeaseIsAssignableAtOnceWithoutSweeper(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	pod.Generate(t, 1)
	first := pod.Assign(t, map[string]any{"ttl": "200ms", "holder": "slow"})
	if time.Until(first.LeaseExpiresAt) > 100*time.Millisecond { // still surely live
		wantError(t, pod.Call(t, "POST", "/tokens/assign", nil), http.StatusNotFound, "no_free_token")
	}

	apptest.Eventually(t, 5*time.Second, "lease_expires_at to pass", func() bool {
		return time.Now().After(first.LeaseExpiresAt.Add(10 * time.Millisecond))
	})
	if v := pod.Lookup(t, first.Token); v.State != "free" || v.LeaseID != nil {
		t.Fatalf("a lapsed lease still shows: %+v", v)
	}
	// The lapsed holder can no longer act on its lease.
	wantError(t, pod.Call(t, "POST", "/tokens/unblock", map[string]any{"token": first.Token, "lease_id": first.LeaseID}), http.StatusConflict, "not_assigned")
	wantError(t, pod.Call(t, "POST", "/tokens/keep-alive", map[string]any{"token": first.Token, "lease_id": first.LeaseID}), http.StatusConflict, "lease_mismatch")

	second := pod.Assign(t, map[string]any{"holder": "next"})
	if second.Token != first.Token || second.LeaseID <= first.LeaseID {
		t.Fatalf("second lease %+v after lapsed %+v", second, first)
	}
	wantError(t, pod.Call(t, "POST", "/tokens/unblock", map[string]any{"token": first.Token, "lease_id": first.LeaseID}), http.StatusConflict, "lease_mismatch")

	// No sweeper ran: the claim itself recorded how the old lease ended,
	// before the new one began.
	var tail []string
	for _, e := range auditOf(t, pod, first.Token) {
		tail = append(tail, e.Kind)
		if e.Kind == "released" && (e.LeaseID == nil || *e.LeaseID != first.LeaseID || *e.Holder != "slow") {
			t.Fatalf("released row %+v does not name the lapsed lease", e)
		}
	}
	if want := []string{"generated", "assigned", "released", "assigned"}; !slices.Equal(tail, want) {
		t.Fatalf("audit = %v, want %v", tail, want)
	}
}

func TestDeadTokenIsNeverServedWithoutSweeper(t *testing.T) {
	t.Parallel()
	const keepaliveTTL = 400 * time.Millisecond
	pod := apptest.NewPod(t, apptest.WithoutSweeper(), withKeepaliveTTL(keepaliveTTL))
	pod.Import(t, "imported/dead value")
	generated := pod.Generate(t, 1)[0]
	leased := pod.Assign(t, map[string]any{"holder": "h"})
	dead := []string{"imported/dead value", generated}

	apptest.Eventually(t, 5*time.Second, "both tokens to die", func() bool {
		for _, tok := range dead {
			if pod.Call(t, "GET", apptest.TokenPath(tok), nil).Status != http.StatusNotFound {
				return false
			}
		}
		return true
	})
	if time.Now().Before(leased.AliveUntil) {
		t.Fatalf("the leased token vanished before its alive_until %s", leased.AliveUntil)
	}
	for _, tok := range dead {
		var leaseID any = leased.LeaseID
		if tok != leased.Token {
			leaseID = 1
		}
		for _, req := range []struct {
			method, path string
			body         any
		}{
			{"GET", apptest.TokenPath(tok), nil},
			{"POST", "/tokens/unblock", map[string]any{"token": tok}},
			{"POST", "/tokens/unblock", map[string]any{"token": tok, "lease_id": leaseID}},
			{"POST", "/tokens/keep-alive", map[string]any{"token": tok}},
			{"PUT", "/tokens/keep-alive", map[string]any{"token": tok, "lease_id": leaseID}},
			{"DELETE", "/tokens/delete", map[string]any{"token": tok}},
			{"DELETE", apptest.TokenPath(tok), nil},
		} {
			r := pod.Call(t, req.method, req.path, req.body)
			if r.Status != http.StatusNotFound || r.ErrorCode(t) != "not_found" {
				t.Errorf("%s %s on dead %q: %d %s", req.method, req.path, tok, r.Status, r.Body)
			}
		}
	}
	wantError(t, pod.Call(t, "POST", "/tokens/assign", nil), http.StatusNotFound, "no_free_token")
	wantError(t, pod.Call(t, "GET", "/tokens/assign", nil), http.StatusNotFound, "no_free_token")

	// Nothing swept the rows: the answers above came from the deadline alone.
	if n := queryInt(t, pod, "SELECT count(*) FROM tokens"); n != 2 {
		t.Fatalf("%d token rows, want the 2 dead ones unswept", n)
	}
	if n := len(auditTrail(t, pod, "expired", "deleted", "kept_alive", "unblocked")); n != 0 {
		t.Fatalf("requests on dead tokens wrote %d audit rows", n)
	}

	// A dead value may be imported again: the old row goes (audit expired),
	// a new token takes its place.
	imported, existing := pod.Import(t, "imported/dead value")
	if len(imported) != 1 || len(existing) != 0 {
		t.Fatalf("re-import of a dead value: imported %q existing %q", imported, existing)
	}
	if v := pod.Lookup(t, "imported/dead value"); v.State != "free" {
		t.Fatalf("re-imported value is %+v", v)
	}
	got := slices.DeleteFunc(kindsOf(auditOf(t, pod, "imported/dead value")), func(k string) bool { return k == "assigned" })
	if !slices.Equal(got, []string{"imported", "expired", "imported"}) {
		t.Fatalf("audit of the re-imported value = %v", got)
	}
}

func TestSweeperRemovesDeadTokens(t *testing.T) {
	t.Parallel()
	// The tokens must live until the assign below, however loaded the machine.
	pod := apptest.NewPod(t, withKeepaliveTTL(2*time.Second), withSweepInterval(100*time.Millisecond))
	tokens := pod.Generate(t, 3)
	leased := pod.Assign(t, map[string]any{"holder": "h"})

	apptest.Eventually(t, 20*time.Second, "the sweeper to remove the dead rows", func() bool {
		return queryInt(t, pod, "SELECT count(*) FROM tokens") == 0
	})
	expired := auditTrail(t, pod, "expired")
	if len(expired) != len(tokens) {
		t.Fatalf("%d expired audit rows, want %d: %+v", len(expired), len(tokens), expired)
	}
	for _, e := range expired {
		if !slices.Contains(tokens, e.Token) {
			t.Errorf("expired row for unknown token %q", e.Token)
		}
		if e.Token == leased.Token && (e.LeaseID == nil || *e.LeaseID != leased.LeaseID || e.Holder == nil || *e.Holder != "h") {
			t.Errorf("expired row of the leased token lacks its lease: %+v", e)
		}
	}
	if s := pod.Stats(t); s != (apptest.Stats{}) {
		t.Fatalf("stats after the sweep = %+v, want all zero", s)
	}
}

func TestSweeperReleasesLapsedLeases(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, withSweepInterval(100*time.Millisecond))
	pod.Generate(t, 4)
	leases := map[string]apptest.Lease{}
	for range 3 {
		l := pod.Assign(t, map[string]any{"ttl": "200ms", "holder": "lapsing"})
		leases[l.Token] = l
	}

	apptest.Eventually(t, 20*time.Second, "the sweeper to release the lapsed leases", func() bool {
		return len(auditTrail(t, pod, "released")) == len(leases)
	})
	for _, e := range auditTrail(t, pod, "released") {
		l, ok := leases[e.Token]
		if !ok || e.LeaseID == nil || *e.LeaseID != l.LeaseID || e.Holder == nil || *e.Holder != "lapsing" {
			t.Errorf("released row %+v matches no lapsed lease", e)
		}
		if e.At.Before(l.LeaseExpiresAt) {
			t.Errorf("lease %d released at %s, before it lapsed at %s", l.LeaseID, e.At, l.LeaseExpiresAt)
		}
	}
	if n := queryInt(t, pod, "SELECT count(*) FROM tokens WHERE lease_id IS NOT NULL"); n != 0 {
		t.Fatalf("%d rows still hold a lease after the sweep", n)
	}
	if s := pod.Stats(t); s != (apptest.Stats{Free: 4, Assigned: 0, Total: 4}) {
		t.Fatalf("stats after the sweep = %+v", s)
	}
}
