package httpapi_test

// The pool routes of DESIGN.md section 7: create, update, read, list, delete.

import (
	"net/http"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/config"
)

// poolResp is a pool object.
type poolResp struct {
	Name         string `json:"name"`
	LeaseTTL     string `json:"lease_ttl"`
	KeepaliveTTL string `json:"keepalive_ttl"`
	MaxLeaseTTL  string `json:"max_lease_ttl"`
	MaxTokens    int64  `json:"max_tokens"`
	Free         int64  `json:"free"`
	Assigned     int64  `json:"assigned"`
	Total        int64  `json:"total"`
}

// putPool creates or updates a pool and checks the status.
func putPool(t testing.TB, pod *apptest.Pod, name string, body any, status int) poolResp {
	t.Helper()
	r := pod.Call(t, "PUT", "/pools/"+name, body)
	wantStatus(t, r, status)
	var p poolResp
	r.JSON(t, &p)
	return p
}

func envPod(t *testing.T) *apptest.Pod {
	return apptest.NewPod(t, apptest.WithoutSweeper(), apptest.WithConfig(func(c *config.Config) {
		c.LeaseTTL = config.Duration(30 * time.Second)
		c.KeepaliveTTL = config.Duration(2 * time.Minute)
		c.MaxLeaseTTL = config.Duration(time.Hour)
		c.MaxTokens = 1000
	}))
}

func TestPutPool(t *testing.T) {
	t.Parallel()
	pod := envPod(t)

	t.Run("201 creates a pool whose unset settings are the environment's", func(t *testing.T) {
		p := putPool(t, pod, "proxies-eu", nil, http.StatusCreated)
		want := poolResp{Name: "proxies-eu", LeaseTTL: "30s", KeepaliveTTL: "2m0s", MaxLeaseTTL: "1h0m0s", MaxTokens: 1000}
		if p != want {
			t.Fatalf("new pool = %+v, want %+v", p, want)
		}
	})

	t.Run("200 replaces the settings of an existing pool", func(t *testing.T) {
		putPool(t, pod, "keys", map[string]any{"lease_ttl": "5s"}, http.StatusCreated)
		p := putPool(t, pod, "keys", map[string]any{
			"lease_ttl": 2, "keepalive_ttl": "90s", "max_lease_ttl": "10m", "max_tokens": 7,
		}, http.StatusOK)
		want := poolResp{Name: "keys", LeaseTTL: "2s", KeepaliveTTL: "1m30s", MaxLeaseTTL: "10m0s", MaxTokens: 7}
		if p != want {
			t.Fatalf("updated pool = %+v, want %+v", p, want)
		}
		// A PUT replaces: what it leaves out falls back to the environment.
		p = putPool(t, pod, "keys", map[string]any{}, http.StatusOK)
		if p.LeaseTTL != "30s" || p.MaxTokens != 1000 {
			t.Fatalf("settings left out did not fall back: %+v", p)
		}
	})

	t.Run("400 invalid_request", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			body any
		}{
			{"Upper", nil},
			{"-lead", nil},
			{"a.b", nil},
			{"x123456789x123456789x123456789x123456789x123456789x123456789x1234", nil},
			{"ok", map[string]any{"lease_ttl": "50ms"}},
			{"ok", map[string]any{"lease_ttl": "2h"}}, // above MAX_LEASE_TTL
			{"ok", map[string]any{"lease_ttl": "20m", "max_lease_ttl": "10m"}},
			{"ok", map[string]any{"keepalive_ttl": "soon"}},
			{"ok", map[string]any{"max_tokens": 0}},
			{"ok", map[string]any{"max_tokens": "5"}},
			{"ok", map[string]any{"unknown": 1}},
		} {
			r := pod.Call(t, "PUT", "/pools/"+tc.name, tc.body)
			wantError(t, r, http.StatusBadRequest, "invalid_request")
		}
		wantError(t, pod.Do(t, "PUT", "/pools/ok", []byte(`{"lease_ttl":`)), http.StatusBadRequest, "invalid_request")
		wantError(t, pod.Call(t, "GET", "/pools/ok", nil), http.StatusNotFound, "pool_not_found")
	})
}

func TestGetAndListPools(t *testing.T) {
	t.Parallel()
	pod := envPod(t)
	putPool(t, pod, "b-pool", map[string]any{"max_tokens": 5}, http.StatusCreated)
	putPool(t, pod, "a-pool", nil, http.StatusCreated)

	t.Run("200 one pool", func(t *testing.T) {
		r := pod.Call(t, "GET", "/pools/b-pool", nil)
		wantStatus(t, r, http.StatusOK)
		var p poolResp
		r.JSON(t, &p)
		if p.Name != "b-pool" || p.MaxTokens != 5 || p.Total != 0 {
			t.Fatalf("GET /pools/b-pool = %+v", p)
		}
		for _, key := range []string{"name", "lease_ttl", "keepalive_ttl", "max_lease_ttl", "max_tokens", "free", "assigned", "total"} {
			if _, ok := r.Map(t)[key]; !ok {
				t.Errorf("pool object lacks %q: %s", key, r.Body)
			}
		}
	})

	t.Run("200 every pool by name, default included", func(t *testing.T) {
		r := pod.Call(t, "GET", "/pools", nil)
		wantStatus(t, r, http.StatusOK)
		var out struct{ Pools []poolResp }
		r.JSON(t, &out)
		var names []string
		for _, p := range out.Pools {
			names = append(names, p.Name)
		}
		if len(names) != 3 || names[0] != "a-pool" || names[1] != "b-pool" || names[2] != "default" {
			t.Fatalf("GET /pools names = %v, want [a-pool b-pool default]", names)
		}
	})

	t.Run("404 pool_not_found", func(t *testing.T) {
		for _, name := range []string{"nope", "NOPE", "a%20b"} {
			wantError(t, pod.Call(t, "GET", "/pools/"+name, nil), http.StatusNotFound, "pool_not_found")
		}
	})
}

func TestDeletePool(t *testing.T) {
	t.Parallel()
	pod := envPod(t)

	t.Run("200 deletes an empty pool, whose name may then be taken again", func(t *testing.T) {
		putPool(t, pod, "gone", map[string]any{"max_tokens": 3}, http.StatusCreated)
		r := pod.Call(t, "DELETE", "/pools/gone", nil)
		wantStatus(t, r, http.StatusOK)
		if m := r.Map(t); m["name"] != "gone" || m["deleted"] != true {
			t.Fatalf("DELETE answer = %s", r.Body)
		}
		wantError(t, pod.Call(t, "GET", "/pools/gone", nil), http.StatusNotFound, "pool_not_found")
		wantError(t, pod.Call(t, "DELETE", "/pools/gone", nil), http.StatusNotFound, "pool_not_found")
		p := putPool(t, pod, "gone", nil, http.StatusCreated)
		if p.MaxTokens != 1000 {
			t.Fatalf("a re-created pool kept the old settings: %+v", p)
		}
	})

	t.Run("409 pool_protected for default", func(t *testing.T) {
		wantError(t, pod.Call(t, "DELETE", "/pools/default", nil), http.StatusConflict, "pool_protected")
		wantStatus(t, pod.Call(t, "GET", "/pools/default", nil), http.StatusOK)
	})

	t.Run("404 pool_not_found", func(t *testing.T) {
		wantError(t, pod.Call(t, "DELETE", "/pools/never", nil), http.StatusNotFound, "pool_not_found")
		wantError(t, pod.Call(t, "DELETE", "/pools/Bad!", nil), http.StatusNotFound, "pool_not_found")
	})
}
