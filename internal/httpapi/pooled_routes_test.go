package httpapi_test

// Every route of section 2 under /pools/{pool}/tokens/..., the same semantics
// inside that pool, and 404 pool_not_found for an unknown pool on each.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

// in is the token routes' prefix of a pool.
func in(pool string) string { return "/pools/" + pool + "/tokens" }

func generateIn(t testing.TB, pod *apptest.Pod, pool string, n int) []string {
	t.Helper()
	r := pod.Call(t, "POST", in(pool)+"/generate", map[string]any{"count": n})
	wantStatus(t, r, http.StatusCreated)
	var out struct{ Tokens []string }
	r.JSON(t, &out)
	if len(out.Tokens) != n {
		t.Fatalf("generate %d in %s returned %d tokens", n, pool, len(out.Tokens))
	}
	return out.Tokens
}

func assignIn(t testing.TB, pod *apptest.Pod, pool string, body any) apptest.Lease {
	t.Helper()
	r := pod.Call(t, "POST", in(pool)+"/assign", body)
	wantStatus(t, r, http.StatusOK)
	var l apptest.Lease
	r.JSON(t, &l)
	return l
}

func lookupIn(t testing.TB, pod *apptest.Pod, pool, token string) apptest.Token {
	t.Helper()
	r := pod.Call(t, "GET", in(pool)+"/"+url.PathEscape(token), nil)
	wantStatus(t, r, http.StatusOK)
	var v apptest.Token
	r.JSON(t, &v)
	return v
}

func statsIn(t testing.TB, pod *apptest.Pod, pool string) apptest.Stats {
	t.Helper()
	r := pod.Call(t, "GET", in(pool)+"/stats", nil)
	wantStatus(t, r, http.StatusOK)
	var s apptest.Stats
	r.JSON(t, &s)
	return s
}

func TestRoutesUnderANamedPool(t *testing.T) {
	t.Parallel()
	pod := envPod(t)
	putPool(t, pod, "eu", map[string]any{"lease_ttl": "45s", "max_tokens": 4}, http.StatusCreated)

	gen := generateIn(t, pod, "eu", 2)
	imported, existing := func() ([]string, []string) {
		r := pod.Call(t, "POST", in("eu")+"/import", map[string]any{"tokens": []string{"shared/value", "eu-only"}})
		wantStatus(t, r, http.StatusCreated)
		var out struct{ Imported, Existing []string }
		r.JSON(t, &out)
		return out.Imported, out.Existing
	}()
	if len(imported) != 2 || len(existing) != 0 {
		t.Fatalf("import into eu: imported %v existing %v", imported, existing)
	}
	// The same value lives in default too: a value is unique per pool.
	if imp, _ := pod.Import(t, "shared/value"); len(imp) != 1 {
		t.Fatalf("the value of pool eu could not be imported into default: %v", imp)
	}
	wantError(t, pod.Call(t, "POST", in("eu")+"/generate", map[string]any{"count": 1}), http.StatusConflict, "pool_full")

	if s := statsIn(t, pod, "eu"); s != (apptest.Stats{Free: 4, Total: 4}) {
		t.Fatalf("eu stats = %+v, want 4 free", s)
	}
	if s := pod.Stats(t); s != (apptest.Stats{Free: 1, Total: 1}) {
		t.Fatalf("default stats = %+v, want 1 free", s)
	}

	euTokens := map[string]bool{gen[0]: true, gen[1]: true, "shared/value": true, "eu-only": true}
	before := time.Now()
	l := assignIn(t, pod, "eu", map[string]any{"holder": "w1"})
	wantExpiry(t, l, 45*time.Second, before, time.Now()) // the pool's own lease TTL
	if !euTokens[l.Token] {
		t.Fatalf("assign in eu returned %q, not a token of eu", l.Token)
	}
	if v := lookupIn(t, pod, "eu", l.Token); v.State != "assigned" || v.LeaseID == nil || *v.LeaseID != l.LeaseID {
		t.Fatalf("lookup in eu = %+v", v)
	}
	r := pod.Call(t, "GET", in("eu")+"/assign", nil)
	wantStatus(t, r, http.StatusOK)
	var l2 apptest.Lease
	r.JSON(t, &l2)

	for _, method := range []string{"POST", "PUT"} {
		r = pod.Call(t, method, in("eu")+"/keep-alive", map[string]any{"token": l.Token, "lease_id": l.LeaseID})
		wantStatus(t, r, http.StatusOK)
	}
	wantError(t, pod.Call(t, "POST", in("eu")+"/unblock", map[string]any{"token": l.Token, "lease_id": l.LeaseID + 1000}),
		http.StatusConflict, "lease_mismatch")
	wantStatus(t, pod.Call(t, "POST", in("eu")+"/unblock", map[string]any{"token": l.Token, "lease_id": l.LeaseID}), http.StatusOK)
	wantError(t, pod.Call(t, "POST", in("eu")+"/unblock", map[string]any{"token": l.Token}), http.StatusConflict, "not_assigned")

	// A token of eu is not found through default, and the reverse.
	if !strings.Contains(l.Token, "/") && l.Token != "eu-only" {
		wantError(t, pod.Call(t, "GET", apptest.TokenPath(l.Token), nil), http.StatusNotFound, "not_found")
	}
	wantError(t, pod.Call(t, "GET", in("eu")+"/"+url.PathEscape("nope"), nil), http.StatusNotFound, "not_found")
	wantError(t, pod.Call(t, "POST", "/tokens/unblock", map[string]any{"token": "eu-only"}), http.StatusNotFound, "not_found")

	wantStatus(t, pod.Call(t, "DELETE", in("eu")+"/delete", map[string]any{"token": "eu-only"}), http.StatusOK)
	wantStatus(t, pod.Call(t, "DELETE", in("eu")+"/"+url.PathEscape("shared/value"), nil), http.StatusOK)
	if v := pod.Lookup(t, "shared/value"); v.State != "free" {
		t.Fatalf("deleting shared/value in eu touched default's: %+v", v)
	}
	wantAssigned := int64(1) // l2's lease, unless its token was deleted
	if l2.Token == "eu-only" || l2.Token == "shared/value" {
		wantAssigned = 0
	}
	if s := statsIn(t, pod, "eu"); s.Total != 2 || s.Assigned != wantAssigned {
		t.Fatalf("eu stats after deletes = %+v, want total 2, assigned %d", s, wantAssigned)
	}

	t.Run("404 pool_not_found on every route of an unknown pool", func(t *testing.T) {
		for _, rt := range []struct{ method, path, body string }{
			{"POST", "/generate", `{"count":1}`},
			{"POST", "/import", `{"tokens":["x"]}`},
			{"POST", "/assign", ``},
			{"GET", "/assign", ``},
			{"POST", "/unblock", `{"token":"x"}`},
			{"DELETE", "/delete", `{"token":"x"}`},
			{"POST", "/keep-alive", `{"token":"x"}`},
			{"PUT", "/keep-alive", `{"token":"x"}`},
			{"GET", "/x", ``},
			{"DELETE", "/x", ``},
			{"GET", "/stats", ``},
			{"GET", "/events", ``},
		} {
			for _, pool := range []string{"missing", "Bad.Name"} {
				var body []byte
				if rt.body != "" {
					body = []byte(rt.body)
				}
				r := pod.Do(t, rt.method, in(pool)+rt.path, body)
				if r.Status != http.StatusNotFound || errorCodeOf(r.Body) != "pool_not_found" {
					t.Errorf("%s %s: %d %s, want 404 pool_not_found", rt.method, in(pool)+rt.path, r.Status, oneLine(r.Body))
				}
			}
		}
	})

	t.Run("409 pool_not_empty while a token is live", func(t *testing.T) {
		wantError(t, pod.Call(t, "DELETE", "/pools/eu", nil), http.StatusConflict, "pool_not_empty")
		for _, tok := range gen {
			pod.Call(t, "DELETE", in("eu")+"/delete", map[string]any{"token": tok})
		}
		wantStatus(t, pod.Call(t, "DELETE", "/pools/eu", nil), http.StatusOK)
		wantError(t, pod.Call(t, "GET", in("eu")+"/stats", nil), http.StatusNotFound, "pool_not_found")
	})
}
