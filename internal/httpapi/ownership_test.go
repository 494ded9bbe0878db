package httpapi_test

import (
	"testing"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/config"
)

// A client touches only the leases it took itself (DESIGN section 8):
// another client's lease is 403 forbidden for unblock and keep-alive, with
// and without its lease_id, and for a lookup; a client looks up only what it
// holds; an operator force-releases any lease of its pools. Batching on and
// off take different statements, so both are walked, in pool default and in
// a named pool.
func TestClientTouchesOnlyItsOwnLeases(t *testing.T) {
	t.Parallel()
	for _, batching := range []bool{true, false} {
		t.Run(map[bool]string{true: "batching", false: "one statement each"}[batching], func(t *testing.T) {
			t.Parallel()
			pod := apptest.NewPod(t, apptest.WithConfig(func(c *config.Config) { c.Batching = config.Switch(batching) }))
			wantStatus(t, pod.Call(t, "PUT", "/pools/eu", nil), 201)
			a := pod.CreateKey(t, "client-a", "client", nil, nil)
			b := pod.CreateKey(t, "client-b", "client", nil, nil)
			op := pod.CreateKey(t, "operator-eu", "operator", []string{"eu"}, nil)

			for _, prefix := range []string{"/tokens", "/pools/eu/tokens"} {
				wantStatus(t, pod.Call(t, "POST", prefix+"/generate", map[string]any{"count": 2}), 201)
				r := pod.CallAs(t, a.Secret, "POST", prefix+"/assign", nil)
				wantStatus(t, r, 200)
				var l apptest.Lease
				r.JSON(t, &l)

				for _, c := range []struct {
					path string
					body map[string]any
				}{
					{"/unblock", map[string]any{"token": l.Token}},
					{"/unblock", map[string]any{"token": l.Token, "lease_id": l.LeaseID}},
					{"/keep-alive", map[string]any{"token": l.Token}},
					{"/keep-alive", map[string]any{"token": l.Token, "lease_id": l.LeaseID}},
				} {
					wantError(t, pod.CallAs(t, b.Secret, "POST", prefix+c.path, c.body), 403, "forbidden")
				}
				wantError(t, pod.CallAs(t, b.Secret, "PUT", prefix+"/keep-alive", map[string]any{"token": l.Token}), 403, "forbidden")
				lookup := prefix + "/" + l.Token
				wantError(t, pod.CallAs(t, b.Secret, "GET", lookup, nil), 403, "forbidden")

				// Nothing changed: A's lease is live and A may use it.
				r = pod.CallAs(t, a.Secret, "GET", lookup, nil)
				wantStatus(t, r, 200)
				var got apptest.Token
				r.JSON(t, &got)
				if got.State != "assigned" || got.LeaseID == nil || *got.LeaseID != l.LeaseID {
					t.Fatalf("%s after refused calls: %s", lookup, r.Body)
				}
				wantStatus(t, pod.CallAs(t, a.Secret, "POST", prefix+"/keep-alive", map[string]any{"token": l.Token, "lease_id": l.LeaseID}), 200)

				// An unknown token is not_found for a client as for anyone.
				wantError(t, pod.CallAs(t, b.Secret, "GET", prefix+"/no-such-token", nil), 404, "not_found")

				if prefix == "/tokens" {
					// The seeds' routes too, answered like every 401 and 403
					// (the seeds had no shape for them).
					for _, c := range []struct{ method, path string }{
						{"POST", "/token/unblock"}, {"PUT", "/token/keep-alive"}, {"PUT", "/token/unblock"},
						{"PUT", "/token/unblockToken"}, {"PUT", "/token/keepAlive"},
					} {
						wantError(t, pod.CallAs(t, b.Secret, c.method, c.path, map[string]any{"token": l.Token}), 403, "forbidden")
					}
					// The operator is limited to pool eu: pool default is not its.
					wantError(t, pod.CallAs(t, op.Secret, "POST", prefix+"/unblock", map[string]any{"token": l.Token}), 403, "forbidden")
					wantStatus(t, pod.CallAs(t, a.Secret, "POST", prefix+"/unblock", map[string]any{"token": l.Token, "lease_id": l.LeaseID}), 200)
				} else {
					// The operator force-releases A's lease in its pool.
					wantStatus(t, pod.CallAs(t, op.Secret, "POST", prefix+"/unblock", map[string]any{"token": l.Token}), 200)
				}
				// Free now: a client holds it no more and may not look it up.
				wantError(t, pod.CallAs(t, a.Secret, "GET", lookup, nil), 403, "forbidden")
				wantError(t, pod.CallAs(t, a.Secret, "POST", prefix+"/keep-alive", map[string]any{"token": l.Token, "lease_id": l.LeaseID}), 409, "lease_mismatch")
			}
		})
	}
}
