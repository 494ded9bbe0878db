package httpapi_test

// Lease ids are fencing tokens: each assignment gets a larger one, and a
// holder presenting an old one can no longer act on the token.

import (
	"net/http"
	"testing"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

func TestStaleLeaseIDIsRefused(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	pod.Generate(t, 1)

	first := pod.Assign(t, map[string]any{"holder": "first"})
	wantStatus(t, pod.Call(t, "POST", "/tokens/unblock", map[string]any{"token": first.Token, "lease_id": first.LeaseID}), http.StatusOK)
	second := pod.Assign(t, map[string]any{"holder": "second"})
	if second.Token != first.Token || second.LeaseID <= first.LeaseID {
		t.Fatalf("second lease %+v does not outrank first %+v", second, first)
	}

	before := dbSnapshot(t, pod)
	stale := map[string]any{"token": first.Token, "lease_id": first.LeaseID}
	wantError(t, pod.Call(t, "POST", "/tokens/unblock", stale), http.StatusConflict, "lease_mismatch")
	wantError(t, pod.Call(t, "POST", "/tokens/keep-alive", stale), http.StatusConflict, "lease_mismatch")
	wantError(t, pod.Call(t, "PUT", "/tokens/keep-alive", stale), http.StatusConflict, "lease_mismatch")
	if dbSnapshot(t, pod) != before {
		t.Fatal("a stale lease id changed the data")
	}
	v := pod.Lookup(t, first.Token)
	if v.State != "assigned" || *v.LeaseID != second.LeaseID || *v.Holder != "second" || !v.LeaseExpiresAt.Equal(second.LeaseExpiresAt) {
		t.Fatalf("the second lease was disturbed: %+v", v)
	}

	// The current holder still acts normally.
	current := map[string]any{"token": first.Token, "lease_id": second.LeaseID}
	wantStatus(t, pod.Call(t, "POST", "/tokens/keep-alive", current), http.StatusOK)
	wantStatus(t, pod.Call(t, "POST", "/tokens/unblock", current), http.StatusOK)
	// Once released, that lease id is stale too.
	wantError(t, pod.Call(t, "POST", "/tokens/unblock", current), http.StatusConflict, "not_assigned")
	wantError(t, pod.Call(t, "POST", "/tokens/keep-alive", current), http.StatusConflict, "lease_mismatch")
}

func TestLeaseIDsStrictlyIncrease(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	pod.Generate(t, 3)
	var last int64
	var held []apptest.Lease
	for i := range 30 {
		l := pod.Assign(t, nil)
		if l.LeaseID <= last {
			t.Fatalf("assignment %d got lease_id %d after %d", i, l.LeaseID, last)
		}
		last = l.LeaseID
		held = append(held, l)
		if len(held) == 3 { // the pool is exhausted: release all, newest first
			for j := len(held) - 1; j >= 0; j-- {
				wantStatus(t, pod.Call(t, "POST", "/tokens/unblock", map[string]any{"token": held[j].Token, "lease_id": held[j].LeaseID}), http.StatusOK)
			}
			held = held[:0]
		}
	}
}
