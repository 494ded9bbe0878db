package httpapi_test

// Keep-alive keeps a token alive; only the lease's own holder, presenting its
// lease id, may also renew the lease.

import (
	"net/http"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

// keepAlive calls keep-alive and returns the token as it answered.
func keepAlive(t testing.TB, pod *apptest.Pod, method string, body map[string]any) apptest.Token {
	t.Helper()
	r := pod.Call(t, method, "/tokens/keep-alive", body)
	wantStatus(t, r, http.StatusOK)
	var v apptest.Token
	r.JSON(t, &v)
	return v
}

// letTheClockMove makes sure the next database now() differs from the last.
func letTheClockMove() { time.Sleep(5 * time.Millisecond) }

func TestKeepAliveWithoutLeaseIDDoesNotExtendTheLease(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	pod.Generate(t, 1)
	l := pod.Assign(t, map[string]any{"ttl": "10s", "holder": "h"})
	letTheClockMove()

	for _, method := range []string{"POST", "PUT"} {
		before := pod.Lookup(t, l.Token)
		letTheClockMove()
		got := keepAlive(t, pod, method, map[string]any{"token": l.Token})
		if got.State != "assigned" || got.LeaseID == nil || *got.LeaseID != l.LeaseID {
			t.Fatalf("%s keep-alive answered %+v", method, got)
		}
		if !got.LeaseExpiresAt.Equal(l.LeaseExpiresAt) {
			t.Fatalf("%s keep-alive without lease_id moved lease_expires_at from %s to %s", method, l.LeaseExpiresAt, got.LeaseExpiresAt)
		}
		if !got.AliveUntil.After(before.AliveUntil) {
			t.Fatalf("%s keep-alive did not extend alive_until: %s, was %s", method, got.AliveUntil, before.AliveUntil)
		}
		after := pod.Lookup(t, l.Token)
		if !after.LeaseExpiresAt.Equal(l.LeaseExpiresAt) || !after.AliveUntil.Equal(got.AliveUntil) {
			t.Fatalf("lookup after keep-alive = %+v", after)
		}
	}
	events := auditOf(t, pod, l.Token)
	last := events[len(events)-1]
	if last.Kind != "kept_alive" || last.LeaseID != nil {
		t.Fatalf("a keep-alive without lease id is audited as %+v", last)
	}
}

func TestKeepAliveWithLeaseIDRenewsTheLeaseByItsOwnTTL(t *testing.T) {
	t.Parallel()
	const leaseTTL, keepaliveTTL = 10 * time.Second, 5 * time.Minute // KEEPALIVE_TTL's default
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	pod.Generate(t, 1)
	l := pod.Assign(t, map[string]any{"ttl": leaseTTL.String()})

	prev := l.LeaseExpiresAt
	for _, method := range []string{"POST", "PUT"} {
		letTheClockMove()
		got := keepAlive(t, pod, method, map[string]any{"token": l.Token, "lease_id": l.LeaseID})
		if got.State != "assigned" || got.LeaseID == nil || *got.LeaseID != l.LeaseID || got.LeaseExpiresAt == nil {
			t.Fatalf("%s keep-alive answered %+v", method, got)
		}
		if !got.LeaseExpiresAt.After(prev) {
			t.Fatalf("%s keep-alive with lease_id did not extend the lease: %s, was %s", method, got.LeaseExpiresAt, prev)
		}
		// Both deadlines come from the same now(): the lease was renewed by
		// its own TTL (10s), not LEASE_TTL (60s).
		if d := got.AliveUntil.Sub(*got.LeaseExpiresAt); d != keepaliveTTL-leaseTTL {
			t.Fatalf("alive_until - lease_expires_at = %s, want %s", d, keepaliveTTL-leaseTTL)
		}
		if v := pod.Lookup(t, l.Token); !v.LeaseExpiresAt.Equal(*got.LeaseExpiresAt) {
			t.Fatalf("lookup shows lease_expires_at %s, keep-alive said %s", v.LeaseExpiresAt, got.LeaseExpiresAt)
		}
		prev = *got.LeaseExpiresAt
	}
	events := auditOf(t, pod, l.Token)
	last := events[len(events)-1]
	if last.Kind != "kept_alive" || last.LeaseID == nil || *last.LeaseID != l.LeaseID {
		t.Fatalf("a keep-alive with lease id is audited as %+v", last)
	}
}

// A provider's heartbeat (keep-alive without lease id) keeps the token alive
// but lets a crashed holder's lease lapse.
func TestHeartbeatDoesNotKeepACrashedHoldersLease(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	pod.Generate(t, 1)
	crashed := pod.Assign(t, map[string]any{"ttl": "300ms", "holder": "crashed"})

	var next apptest.Lease
	apptest.Eventually(t, 5*time.Second, "the crashed holder's lease to lapse despite heartbeats", func() bool {
		keepAlive(t, pod, "POST", map[string]any{"token": crashed.Token})
		r := pod.Call(t, "POST", "/tokens/assign", map[string]any{"holder": "next"})
		if r.Status == http.StatusNotFound && r.ErrorCode(t) == "no_free_token" {
			return false
		}
		wantStatus(t, r, http.StatusOK)
		r.JSON(t, &next)
		return true
	})
	if next.Token != crashed.Token || next.LeaseID <= crashed.LeaseID {
		t.Fatalf("next lease %+v after crashed %+v", next, crashed)
	}
	if time.Now().Before(crashed.LeaseExpiresAt) {
		t.Fatalf("the token was reassigned before the lease lapsed at %s", crashed.LeaseExpiresAt)
	}
}
