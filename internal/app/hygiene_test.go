package app_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/testdb"
)

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// No secret reaches a log line or an error message: a full run of two pods
// at debug level, with every kind of credential (good, revoked, malformed,
// unknown) and token values, then every key and value is looked for in the
// logs and in every answer that should not hold it.
func TestNoSecretInLogs(t *testing.T) {
	logs := &syncBuffer{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })

	dbURL := testdb.NewURL(t)
	a := apptest.NewPodOn(t, dbURL)
	b := apptest.NewPodOn(t, dbURL)
	secrets := []string{a.AdminKey}
	keys := a.KeysOfEachRole(t, "hyg-", nil)
	for _, k := range keys {
		secrets = append(secrets, k.Secret)
	}
	bogus := []string{
		"tl_" + strings.Repeat("Z", 43), // well-formed, unknown
		"tl_too-short-secret-value",
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
		"not-a-credential-at-all",
	}
	secrets = append(secrets, bogus...)
	values := []string{"licence-HYG-0001", "proxy 10.9.9.9:3128/hyg", "sk-hygiene-api-key-42"}

	check := func(what string, r apptest.Response, mayHold ...string) {
		t.Helper()
		for _, s := range append(secrets, values...) {
			held := false
			for _, m := range mayHold {
				held = held || m == s
			}
			if !held && bytes.Contains(r.Body, []byte(s)) {
				t.Errorf("%s: the answer holds a secret: %s", what, r.Body)
			}
		}
	}
	for _, cred := range bogus {
		for _, pod := range []*apptest.Pod{a, b} {
			r := pod.DoAs(t, cred, "GET", "/tokens/stats", nil)
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("bogus credential: %d", r.Status)
			}
			check("401", r)
		}
	}
	op, cl, rd := keys["operator"].Secret, keys["client"].Secret, keys["reader"].Secret
	r := a.CallAs(t, op, "POST", "/tokens/import", map[string]any{"tokens": values})
	check("import", r, values...)
	r = a.CallAs(t, op, "POST", "/tokens/import", map[string]any{"tokens": []string{values[0], values[0]}})
	check("bad import", r)
	gen := a.CallAs(t, op, "POST", "/tokens/generate", map[string]any{"count": 3})
	var g struct{ Tokens []string }
	gen.JSON(t, &g)
	values = append(values, g.Tokens...)
	for range 4 {
		r = b.CallAs(t, cl, "POST", "/tokens/assign", map[string]any{"holder": "hyg-worker"})
		var l struct {
			Token   string `json:"token"`
			LeaseID int64  `json:"lease_id"`
		}
		r.JSON(t, &l)
		b.CallAs(t, cl, "POST", "/tokens/keep-alive", map[string]any{"token": l.Token, "lease_id": l.LeaseID})
		b.CallAs(t, cl, "POST", "/tokens/unblock", map[string]any{"token": l.Token, "lease_id": l.LeaseID + 1000})
		b.CallAs(t, cl, "POST", "/tokens/unblock", map[string]any{"token": l.Token, "lease_id": l.LeaseID})
		check("reader lookup", a.CallAs(t, rd, "GET", "/tokens/"+url.PathEscape(l.Token), nil))
		check("forbidden", a.CallAs(t, rd, "POST", "/tokens/unblock", map[string]any{"token": l.Token}))
		check("operator with lease id", a.CallAs(t, op, "POST", "/tokens/unblock", map[string]any{"token": l.Token, "lease_id": l.LeaseID}))
	}
	a.CallAs(t, op, "DELETE", "/tokens/"+url.PathEscape(values[1]), nil)
	check("revoke", a.Call(t, "DELETE", "/admin/keys/hyg-reader", nil))
	check("revoked key", b.DoAs(t, rd, "GET", "/tokens/stats", nil))
	check("key list", a.Call(t, "GET", "/admin/keys", nil))
	check("readyz", a.DoAs(t, apptest.Anonymous, "GET", "/readyz", nil))
	check("duplicate key", a.Call(t, "POST", "/admin/keys", map[string]any{"name": "hyg-admin", "role": "admin"}))

	off := apptest.NewPod(t, apptest.WithAuthOff())
	off.DoAs(t, apptest.Anonymous, "GET", "/tokens/stats", nil)

	out := logs.String()
	if !strings.Contains(out, "AUTH=off") {
		t.Error("no warning logged for AUTH=off")
	}
	if !strings.Contains(out, `"level":"DEBUG"`) {
		t.Fatal("debug logs were not captured")
	}
	for _, s := range append(secrets, values...) {
		if strings.Contains(out, s) {
			for line := range strings.SplitSeq(out, "\n") {
				if strings.Contains(line, s) {
					t.Errorf("a log line holds a secret: %s", line)
					break
				}
			}
		}
	}
}
