package httpapi_test

// The endpoints that lease tokens: assign, unblock, keep-alive.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

// wantExpiry checks that a lease lasts ttl from a moment between before and
// after (the database and the test share the machine's clock).
func wantExpiry(t testing.TB, l apptest.Lease, ttl time.Duration, before, after time.Time) {
	t.Helper()
	const slack = 250 * time.Millisecond
	if l.LeaseExpiresAt.Before(before.Add(ttl-slack)) || l.LeaseExpiresAt.After(after.Add(ttl+slack)) {
		t.Fatalf("lease_expires_at %s is not %s after the request (%s..%s)", l.LeaseExpiresAt, ttl, before, after)
	}
}

func TestAssign(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	const poolSize = 12
	pod.Generate(t, poolSize)
	assigned := 0
	call := func(t *testing.T, method, path string, body any) apptest.Lease {
		t.Helper()
		r := pod.Call(t, method, path, body)
		wantStatus(t, r, http.StatusOK)
		var l apptest.Lease
		r.JSON(t, &l)
		assigned++
		return l
	}

	t.Run("POST without a body: 200 with the default lease and no holder", func(t *testing.T) {
		before := time.Now()
		r := pod.Call(t, "POST", "/tokens/assign", nil)
		after := time.Now()
		wantStatus(t, r, http.StatusOK)
		assigned++
		m := r.Map(t)
		for _, k := range []string{"token", "lease_id", "lease_expires_at", "alive_until"} {
			if _, ok := m[k]; !ok {
				t.Errorf("assign lacks %q: %s", k, r.Body)
			}
		}
		if _, ok := m["holder"]; ok {
			t.Errorf("assign without holder shows one: %s", r.Body)
		}
		if id, ok := m["lease_id"].(float64); !ok || id < 1 || id != float64(int64(id)) {
			t.Errorf("lease_id %v is not a positive JSON integer", m["lease_id"])
		}
		wantAPITime(t, m["lease_expires_at"])
		wantAPITime(t, m["alive_until"])
		var l apptest.Lease
		r.JSON(t, &l)
		wantExpiry(t, l, 60*time.Second, before, after)
		if v := pod.Lookup(t, l.Token); v.State != "assigned" || v.Holder != nil {
			t.Fatalf("lookup after assign = %+v", v)
		}
	})

	t.Run("GET with holder and ttl in the query", func(t *testing.T) {
		before := time.Now()
		l := call(t, "GET", "/tokens/assign?holder=worker-17%40host-a&ttl=30s", nil)
		wantExpiry(t, l, 30*time.Second, before, time.Now())
		if l.Holder == nil || *l.Holder != "worker-17@host-a" {
			t.Fatalf("holder = %v", l.Holder)
		}
		events := auditOf(t, pod, l.Token)
		last := events[len(events)-1]
		if last.Kind != "assigned" || last.LeaseID == nil || *last.LeaseID != l.LeaseID || last.Holder == nil || *last.Holder != "worker-17@host-a" {
			t.Fatalf("audit of the assign = %+v", last)
		}
	})

	t.Run("POST with holder and ttl in the body, ttl as Go duration or seconds", func(t *testing.T) {
		for _, tc := range []struct {
			ttl  any
			want time.Duration
		}{{"45s", 45 * time.Second}, {"2m", 2 * time.Minute}, {20, 20 * time.Second}, {"90", 90 * time.Second}, {"300000ms", 5 * time.Minute}, {"1500.5", 1500*time.Second + 500*time.Millisecond}, {90.25, 90250 * time.Millisecond}} {
			before := time.Now()
			l := call(t, "POST", "/tokens/assign", map[string]any{"holder": "w-2", "ttl": tc.ttl})
			wantExpiry(t, l, tc.want, before, time.Now())
			if l.Holder == nil || *l.Holder != "w-2" {
				t.Fatalf("holder = %v", l.Holder)
			}
		}
	})

	t.Run("the body wins over the query", func(t *testing.T) {
		before := time.Now()
		l := call(t, "POST", "/tokens/assign?holder=from-query&ttl=10s", map[string]any{"holder": "from-body", "ttl": "40s"})
		wantExpiry(t, l, 40*time.Second, before, time.Now())
		if l.Holder == nil || *l.Holder != "from-body" {
			t.Fatalf("holder = %v", l.Holder)
		}
	})

	t.Run("400 invalid_request for bad holder, ttl or wait, assigning nothing", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			path string
			body any
		}{
			{"ttl below 100ms", "/tokens/assign", map[string]any{"ttl": "50ms"}},
			{"ttl above MAX_LEASE_TTL", "/tokens/assign", map[string]any{"ttl": "2h"}},
			{"ttl zero", "/tokens/assign", map[string]any{"ttl": 0}},
			{"ttl negative", "/tokens/assign", map[string]any{"ttl": -5}},
			{"ttl not a duration", "/tokens/assign", map[string]any{"ttl": "soon"}},
			{"ttl of a wrong type", "/tokens/assign", map[string]any{"ttl": true}},
			{"holder empty", "/tokens/assign", map[string]any{"holder": ""}},
			{"holder too long", "/tokens/assign", map[string]any{"holder": strings.Repeat("h", 201)}},
			{"holder with a control character", "/tokens/assign", map[string]any{"holder": "a\nb"}},
			{"holder of a wrong type", "/tokens/assign", map[string]any{"holder": 17}},
			{"unknown field", "/tokens/assign", map[string]any{"holdr": "x"}},
			{"query ttl below 100ms", "/tokens/assign?ttl=10ms", nil},
			{"query ttl not a duration", "/tokens/assign?ttl=abc", nil},
			{"query ttl empty", "/tokens/assign?ttl=", nil},
			{"query holder empty", "/tokens/assign?holder=", nil},
			{"query holder with a control character", "/tokens/assign?holder=a%00b", nil},
			{"query wait not a duration", "/tokens/assign?wait=abc", nil},
			{"query wait negative", "/tokens/assign?wait=-1s", nil},
			{"query wait above 60s", "/tokens/assign?wait=61s", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := dbSnapshot(t, pod)
				for _, method := range []string{"POST", "GET"} {
					wantError(t, pod.Call(t, method, tc.path, tc.body), http.StatusBadRequest, "invalid_request")
				}
				if dbSnapshot(t, pod) != before {
					t.Fatal("a refused assign changed the data")
				}
			})
		}
	})

	t.Run("404 no_free_token once every token is leased, by POST and GET", func(t *testing.T) {
		for assigned < poolSize {
			call(t, "POST", "/tokens/assign", nil)
		}
		wantError(t, pod.Call(t, "POST", "/tokens/assign", nil), http.StatusNotFound, "no_free_token")
		wantError(t, pod.Call(t, "GET", "/tokens/assign?holder=x", nil), http.StatusNotFound, "no_free_token")
		if s := pod.Stats(t); s != (apptest.Stats{Free: 0, Assigned: poolSize, Total: poolSize}) {
			t.Fatalf("stats = %+v", s)
		}
	})

	t.Run("404 no_free_token on an empty pool", func(t *testing.T) {
		empty := apptest.NewPod(t, apptest.WithoutSweeper())
		wantError(t, empty.Call(t, "POST", "/tokens/assign", nil), http.StatusNotFound, "no_free_token")
	})
}

func TestUnblock(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	pod.Generate(t, 3)

	t.Run("200 with the lease id frees the token and audits the lease", func(t *testing.T) {
		l := pod.Assign(t, map[string]any{"holder": "h"})
		r := pod.Call(t, "POST", "/tokens/unblock", map[string]any{"token": l.Token, "lease_id": l.LeaseID})
		wantStatus(t, r, http.StatusOK)
		if m := r.Map(t); len(m) != 2 || m["token"] != l.Token || m["state"] != "free" {
			t.Fatalf("unblock answered %s", r.Body)
		}
		if v := pod.Lookup(t, l.Token); v.State != "free" || v.LeaseID != nil {
			t.Fatalf("lookup after unblock = %+v", v)
		}
		events := auditOf(t, pod, l.Token)
		last := events[len(events)-1]
		if last.Kind != "unblocked" || last.LeaseID == nil || *last.LeaseID != l.LeaseID || last.Holder == nil || *last.Holder != "h" {
			t.Fatalf("audit of the unblock = %+v", last)
		}
	})

	t.Run("200 without a lease id frees whatever lease is current", func(t *testing.T) {
		l := pod.Assign(t, nil)
		wantStatus(t, pod.Call(t, "POST", "/tokens/unblock", map[string]any{"token": l.Token}), http.StatusOK)
		if v := pod.Lookup(t, l.Token); v.State != "free" {
			t.Fatalf("lookup after unblock = %+v", v)
		}
	})

	l := pod.Assign(t, nil)

	t.Run("400 invalid_request for a missing or malformed token or lease id", func(t *testing.T) {
		for _, body := range []any{
			map[string]any{},
			map[string]any{"token": ""},
			map[string]any{"token": l.Token, "lease_id": 0},
			map[string]any{"token": l.Token, "lease_id": -3},
			map[string]any{"token": l.Token, "lease_id": "1"},
			map[string]any{"token": l.Token, "lease_id": 1.5},
		} {
			wantError(t, pod.Call(t, "POST", "/tokens/unblock", body), http.StatusBadRequest, "invalid_request")
		}
		if v := pod.Lookup(t, l.Token); v.State != "assigned" {
			t.Fatal("a refused unblock freed the token")
		}
	})

	t.Run("404 not_found for an unknown token", func(t *testing.T) {
		wantError(t, pod.Call(t, "POST", "/tokens/unblock", map[string]any{"token": "no-such-token"}), http.StatusNotFound, "not_found")
		wantError(t, pod.Call(t, "POST", "/tokens/unblock", map[string]any{"token": "no-such-token", "lease_id": l.LeaseID}), http.StatusNotFound, "not_found")
	})

	t.Run("409 lease_mismatch for another lease id, leaving the lease", func(t *testing.T) {
		r := pod.Call(t, "POST", "/tokens/unblock", map[string]any{"token": l.Token, "lease_id": l.LeaseID + 1000})
		wantError(t, r, http.StatusConflict, "lease_mismatch")
		if v := pod.Lookup(t, l.Token); v.State != "assigned" || *v.LeaseID != l.LeaseID {
			t.Fatalf("a refused unblock changed the lease: %+v", v)
		}
	})

	t.Run("409 not_assigned for a free token", func(t *testing.T) {
		wantStatus(t, pod.Call(t, "POST", "/tokens/unblock", map[string]any{"token": l.Token}), http.StatusOK)
		wantError(t, pod.Call(t, "POST", "/tokens/unblock", map[string]any{"token": l.Token}), http.StatusConflict, "not_assigned")
		wantError(t, pod.Call(t, "POST", "/tokens/unblock", map[string]any{"token": l.Token, "lease_id": l.LeaseID}), http.StatusConflict, "not_assigned")
	})
}

func TestKeepAliveEndpoint(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	tokens := pod.Generate(t, 2)
	l := pod.Assign(t, map[string]any{"holder": "h"})
	free := tokens[0]
	if free == l.Token {
		free = tokens[1]
	}

	for _, method := range []string{"POST", "PUT"} {
		t.Run(method+" 200 for a free token: state and alive_until only", func(t *testing.T) {
			r := pod.Call(t, method, "/tokens/keep-alive", map[string]any{"token": free})
			wantStatus(t, r, http.StatusOK)
			m := r.Map(t)
			if m["token"] != free || m["state"] != "free" {
				t.Fatalf("keep-alive answered %s", r.Body)
			}
			wantAPITime(t, m["alive_until"])
			for _, k := range []string{"lease_id", "lease_expires_at", "holder"} {
				if _, ok := m[k]; ok {
					t.Errorf("keep-alive of a free token shows %q: %s", k, r.Body)
				}
			}
		})

		t.Run(method+" 200 for the live lease: its id and expiry", func(t *testing.T) {
			r := pod.Call(t, method, "/tokens/keep-alive", map[string]any{"token": l.Token, "lease_id": l.LeaseID})
			wantStatus(t, r, http.StatusOK)
			m := r.Map(t)
			if m["token"] != l.Token || m["state"] != "assigned" || m["lease_id"] != float64(l.LeaseID) {
				t.Fatalf("keep-alive answered %s", r.Body)
			}
			wantAPITime(t, m["lease_expires_at"])
			wantAPITime(t, m["alive_until"])
		})

		t.Run(method+" 400 invalid_request for a missing token or bad lease id", func(t *testing.T) {
			for _, body := range []any{
				map[string]any{},
				map[string]any{"token": ""},
				map[string]any{"token": l.Token, "lease_id": 0},
				map[string]any{"token": l.Token, "lease_id": "x"},
			} {
				wantError(t, pod.Call(t, method, "/tokens/keep-alive", body), http.StatusBadRequest, "invalid_request")
			}
		})

		t.Run(method+" 404 not_found for an unknown token", func(t *testing.T) {
			wantError(t, pod.Call(t, method, "/tokens/keep-alive", map[string]any{"token": "no-such-token"}), http.StatusNotFound, "not_found")
		})

		t.Run(method+" 409 lease_mismatch for another lease id or a free token's", func(t *testing.T) {
			before := dbSnapshot(t, pod)
			wantError(t, pod.Call(t, method, "/tokens/keep-alive", map[string]any{"token": l.Token, "lease_id": l.LeaseID + 1000}), http.StatusConflict, "lease_mismatch")
			wantError(t, pod.Call(t, method, "/tokens/keep-alive", map[string]any{"token": free, "lease_id": l.LeaseID}), http.StatusConflict, "lease_mismatch")
			if dbSnapshot(t, pod) != before {
				t.Fatal("a refused keep-alive changed the data")
			}
		})
	}
}
