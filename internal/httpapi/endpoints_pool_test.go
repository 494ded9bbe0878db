package httpapi_test

// The endpoints that shape the pool: generate, import, lookup, delete, stats.

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/config"
)

func withMaxTokens(n int64) apptest.Option {
	return apptest.WithConfig(func(c *config.Config) { c.MaxTokens = n })
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper(), withMaxTokens(5))

	t.Run("201 with count new, unguessable, URL-safe tokens", func(t *testing.T) {
		tokens := pod.Generate(t, 3)
		seen := map[string]bool{}
		for _, tok := range tokens {
			raw, err := base64.RawURLEncoding.DecodeString(tok)
			if err != nil || len(raw) < 16 {
				t.Errorf("token %q is not base64url of at least 128 bits", tok)
			}
			if seen[tok] {
				t.Errorf("token %q returned twice", tok)
			}
			seen[tok] = true
			if v := pod.Lookup(t, tok); v.State != "free" {
				t.Errorf("new token %q is %s, want free", tok, v.State)
			}
			if got := kindsOf(auditOf(t, pod, tok)); strings.Join(got, ",") != "generated" {
				t.Errorf("audit of new token %q = %v, want [generated]", tok, got)
			}
		}
	})

	t.Run("400 invalid_request for a count outside 1..10000", func(t *testing.T) {
		for _, count := range []any{0, -1, 10001, "2", 1.5, nil} {
			r := pod.Call(t, "POST", "/tokens/generate", map[string]any{"count": count})
			wantError(t, r, http.StatusBadRequest, "invalid_request")
		}
		wantError(t, pod.Call(t, "POST", "/tokens/generate", map[string]any{}), http.StatusBadRequest, "invalid_request")
	})

	t.Run("409 pool_full past MAX_TOKENS, creating none", func(t *testing.T) {
		before := pod.Stats(t).Total // 3 from the first subtest
		r := pod.Call(t, "POST", "/tokens/generate", map[string]any{"count": 5 - before + 1})
		wantError(t, r, http.StatusConflict, "pool_full")
		if got := pod.Stats(t).Total; got != before {
			t.Fatalf("a refused generate changed the pool: total %d, want %d", got, before)
		}
		pod.Generate(t, int(5-before)) // exactly up to the cap is fine
		wantError(t, pod.Call(t, "POST", "/tokens/generate", map[string]any{"count": 1}), http.StatusConflict, "pool_full")
	})
}

func TestImport(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper(), withMaxTokens(6))

	t.Run("201 lists new values as imported and live ones as existing", func(t *testing.T) {
		imported, existing := pod.Import(t, "key-1", "proxy 10.0.0.1:3128/a?b")
		if strings.Join(imported, ",") != "key-1,proxy 10.0.0.1:3128/a?b" || existing == nil || len(existing) != 0 {
			t.Fatalf("first import: imported %q existing %#v", imported, existing)
		}
		lease := pod.Assign(t, map[string]any{"holder": "h"})

		imported, existing = pod.Import(t, "key-1", "key-2", "proxy 10.0.0.1:3128/a?b")
		if strings.Join(imported, ",") != "key-2" || strings.Join(existing, ",") != "key-1,proxy 10.0.0.1:3128/a?b" {
			t.Fatalf("second import: imported %q existing %q", imported, existing)
		}
		// A live value is left untouched: the lease survives the re-import.
		if v := pod.Lookup(t, lease.Token); v.State != "assigned" || v.LeaseID == nil || *v.LeaseID != lease.LeaseID {
			t.Fatalf("re-import changed the leased token: %+v", v)
		}
		if got := kindsOf(auditOf(t, pod, "key-2")); strings.Join(got, ",") != "imported" {
			t.Fatalf("audit of key-2 = %v, want [imported]", got)
		}
	})

	t.Run("201 with an empty imported list when every value exists", func(t *testing.T) {
		r := pod.Call(t, "POST", "/tokens/import", map[string]any{"tokens": []string{"key-1"}})
		wantStatus(t, r, http.StatusCreated)
		got := r.Map(t)
		if imp, ok := got["imported"].([]any); !ok || len(imp) != 0 {
			t.Fatalf("imported = %#v, want []: %s", got["imported"], r.Body)
		}
		if ex, ok := got["existing"].([]any); !ok || len(ex) != 1 || ex[0] != "key-1" {
			t.Fatalf("existing = %#v, want [key-1]", got["existing"])
		}
	})

	t.Run("400 invalid_request for a bad value, importing none", func(t *testing.T) {
		for name, values := range map[string][]string{
			"duplicate in the request": {"dup-a", "dup-b", "dup-a"},
			"empty value":              {"ok-1", ""},
			"control character":        {"ok-1", "tab\there"},
			"over 512 bytes":           {"ok-1", strings.Repeat("x", 513)},
			"route word stats":         {"ok-1", "stats"},
			"route word keep-alive":    {"keep-alive"},
			"dot segment":              {".."},
			"empty list":               {},
		} {
			t.Run(name, func(t *testing.T) {
				before := dbSnapshot(t, pod)
				r := pod.Call(t, "POST", "/tokens/import", map[string]any{"tokens": values})
				wantError(t, r, http.StatusBadRequest, "invalid_request")
				if dbSnapshot(t, pod) != before {
					t.Fatal("a refused import changed the data")
				}
			})
		}
	})

	t.Run("409 pool_full past MAX_TOKENS, importing none", func(t *testing.T) {
		before := dbSnapshot(t, pod) // 3 tokens of 6
		r := pod.Call(t, "POST", "/tokens/import", map[string]any{"tokens": []string{"n-1", "n-2", "n-3", "n-4"}})
		wantError(t, r, http.StatusConflict, "pool_full")
		if dbSnapshot(t, pod) != before {
			t.Fatal("a refused import changed the data")
		}
		wantError(t, pod.Call(t, "GET", apptest.TokenPath("n-1"), nil), http.StatusNotFound, "not_found")
		// Values already live do not count against the cap.
		imported, _ := pod.Import(t, "key-1", "n-1", "n-2", "n-3")
		if len(imported) != 3 {
			t.Fatalf("imported %q, want the 3 new values", imported)
		}
	})
}

// Imported values may hold any character but controls; percent-encoded in the
// path, each one is exactly one token for lookup and delete.
func TestLookupAndDeleteByPathWithAwkwardValues(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	values := []string{
		"a/b?c d",
		"proxy://user:pw@10.0.0.1:3128/x?y=1&z=2#frag",
		"k+ey/base64==",   // standard base64 keys hold '+' and '/'
		"a+b",             // '+' is not a space in a path
		"100%",            // a literal percent
		"x%2Fy",           // looks percent-encoded, but is the literal value
		"x%2Fy/z+w",       // both at once
		"ключ доступа",    // non-ASCII
		"/leading-slash",  // a leading slash
		"trailing-slash/", // a trailing one
		"...",             // dots that are not a dot segment
		" ",               // a lone space
	}
	imported, _ := pod.Import(t, values...)
	if len(imported) != len(values) {
		t.Fatalf("imported %d of %d values", len(imported), len(values))
	}
	for _, v := range values {
		t.Run(fmt.Sprintf("%q", v), func(t *testing.T) {
			got := pod.Lookup(t, v)
			if got.Token != v || got.State != "free" || got.CreatedAt == nil {
				t.Fatalf("lookup %q = %+v", v, got)
			}
			r := pod.Call(t, "DELETE", apptest.TokenPath(v), nil)
			wantStatus(t, r, http.StatusOK)
			if m := r.Map(t); m["token"] != v || m["deleted"] != true {
				t.Fatalf("delete %q answered %s", v, r.Body)
			}
			wantError(t, pod.Call(t, "GET", apptest.TokenPath(v), nil), http.StatusNotFound, "not_found")
		})
	}
	if got := pod.Stats(t); got.Total != 0 {
		t.Fatalf("after deleting every value the pool holds %d", got.Total)
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	tokens := pod.Generate(t, 2)

	t.Run("200 free token without lease fields", func(t *testing.T) {
		r := pod.Call(t, "GET", apptest.TokenPath(tokens[0]), nil)
		wantStatus(t, r, http.StatusOK)
		m := r.Map(t)
		for _, k := range []string{"token", "state", "alive_until", "created_at"} {
			if _, ok := m[k]; !ok {
				t.Errorf("lookup lacks %q: %s", k, r.Body)
			}
		}
		for _, k := range []string{"lease_id", "lease_expires_at", "holder"} {
			if _, ok := m[k]; ok {
				t.Errorf("free token shows %q: %s", k, r.Body)
			}
		}
		wantAPITime(t, m["alive_until"])
		wantAPITime(t, m["created_at"])
	})

	t.Run("200 assigned token with its lease", func(t *testing.T) {
		l := pod.Assign(t, map[string]any{"holder": "worker-17@host-a"})
		v := pod.Lookup(t, l.Token)
		if v.State != "assigned" || v.LeaseID == nil || *v.LeaseID != l.LeaseID ||
			v.Holder == nil || *v.Holder != "worker-17@host-a" ||
			v.LeaseExpiresAt == nil || !v.LeaseExpiresAt.Equal(l.LeaseExpiresAt) {
			t.Fatalf("lookup of leased token = %+v, lease %+v", v, l)
		}
	})

	t.Run("404 not_found for unknown and impossible values", func(t *testing.T) {
		for _, v := range []string{"no-such-token", strings.Repeat("z", 600), "bell\a"} {
			wantError(t, pod.Call(t, "GET", apptest.TokenPath(v), nil), http.StatusNotFound, "not_found")
		}
	})
}

func TestDelete(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	tokens := pod.Generate(t, 3)

	t.Run("DELETE /tokens/delete with a body: 200, then the token is gone", func(t *testing.T) {
		r := pod.Call(t, "DELETE", "/tokens/delete", map[string]any{"token": tokens[0]})
		wantStatus(t, r, http.StatusOK)
		if m := r.Map(t); m["token"] != tokens[0] || m["deleted"] != true {
			t.Fatalf("delete answered %s", r.Body)
		}
		wantError(t, pod.Call(t, "GET", apptest.TokenPath(tokens[0]), nil), http.StatusNotFound, "not_found")
		wantError(t, pod.Call(t, "DELETE", "/tokens/delete", map[string]any{"token": tokens[0]}), http.StatusNotFound, "not_found")
	})

	t.Run("DELETE /tokens/{token}: 200 even while leased, audited with the lease", func(t *testing.T) {
		// Two tokens are left; take both so the one deleted is surely leased.
		l1 := pod.Assign(t, map[string]any{"holder": "h1"})
		pod.Assign(t, nil)
		r := pod.Call(t, "DELETE", apptest.TokenPath(l1.Token), nil)
		wantStatus(t, r, http.StatusOK)
		if m := r.Map(t); m["token"] != l1.Token || m["deleted"] != true {
			t.Fatalf("delete answered %s", r.Body)
		}
		events := auditOf(t, pod, l1.Token)
		last := events[len(events)-1]
		if last.Kind != "deleted" || last.LeaseID == nil || *last.LeaseID != l1.LeaseID || last.Holder == nil || *last.Holder != "h1" {
			t.Fatalf("last audit row of the deleted token = %+v", last)
		}
		if s := pod.Stats(t); s != (apptest.Stats{Free: 0, Assigned: 1, Total: 1}) {
			t.Fatalf("stats after deleting a leased token = %+v", s)
		}
	})

	t.Run("404 not_found for unknown tokens", func(t *testing.T) {
		wantError(t, pod.Call(t, "DELETE", apptest.TokenPath("no-such-token"), nil), http.StatusNotFound, "not_found")
		wantError(t, pod.Call(t, "DELETE", "/tokens/delete", map[string]any{"token": "no-such-token"}), http.StatusNotFound, "not_found")
	})

	t.Run("400 invalid_request for a body without a token", func(t *testing.T) {
		for _, body := range []any{map[string]any{}, map[string]any{"token": ""}, map[string]any{"token": tokens[2], "lease_id": 1}} {
			wantError(t, pod.Call(t, "DELETE", "/tokens/delete", body), http.StatusBadRequest, "invalid_request")
		}
		wantError(t, pod.Do(t, "DELETE", "/tokens/delete", nil), http.StatusBadRequest, "invalid_request")
	})
}

func TestStats(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	if s := pod.Stats(t); s != (apptest.Stats{}) {
		t.Fatalf("stats of an empty pool = %+v", s)
	}
	tokens := pod.Generate(t, 5)
	pod.Import(t, "imported-1")
	l1, l2 := pod.Assign(t, nil), pod.Assign(t, nil)
	if s := pod.Stats(t); s != (apptest.Stats{Free: 4, Assigned: 2, Total: 6}) {
		t.Fatalf("stats = %+v, want 4 free, 2 assigned, 6 total", s)
	}
	wantStatus(t, pod.Call(t, "POST", "/tokens/unblock", map[string]any{"token": l1.Token}), http.StatusOK)
	if s := pod.Stats(t); s != (apptest.Stats{Free: 5, Assigned: 1, Total: 6}) {
		t.Fatalf("stats after an unblock = %+v", s)
	}
	// Delete every generated token but l1's (which is free now).
	left := map[string]bool{"imported-1": true, l1.Token: true}
	for _, tok := range tokens {
		if !left[tok] {
			wantStatus(t, pod.Call(t, "DELETE", apptest.TokenPath(tok), nil), http.StatusOK)
		}
	}
	want := apptest.Stats{Total: int64(len(left))}
	if left[l2.Token] {
		want.Assigned = 1
	}
	want.Free = want.Total - want.Assigned
	if s := pod.Stats(t); s != want {
		t.Fatalf("stats after the deletes = %+v, want %+v", s, want)
	}
}
