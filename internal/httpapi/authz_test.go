package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/auth"
	"github.com/tokenlease/tokenlease/internal/httpapi"
)

// statusAs sends one request with credential and returns its status and
// error code, without reading a stream's body past its headers.
func statusAs(t testing.TB, pod *apptest.Pod, credential, method, path string, body []byte) (int, string, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rd *bytes.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, pod.URL+path, nil)
	if rd != nil {
		req, err = http.NewRequestWithContext(ctx, method, pod.URL+path, rd)
	}
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := pod.Client.Do(apptest.WithCredential(req, credential))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	code := ""
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		var e struct{ Error struct{ Code string } }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		code = e.Error.Code
	}
	return resp.StatusCode, code, resp.Header
}

// requestFor fills a route template with values that exist or not (the
// table walk looks only at whether authorisation let the request through).
func requestFor(rr httpapi.RouteRule, pool string) (string, []byte) {
	path := strings.NewReplacer(":pool", pool, ":token", "no-such-token", ":name", "no-such-key", "*file", "index.html", "*path", "jobs").Replace(rr.Path)
	switch {
	case path == "/events":
		// Naming the pool: without one, the stream is of the caller's own
		// pools (TestEventsOfTheCallersPools).
		return path + "?pool=" + pool, nil
	case strings.HasSuffix(path, "/generate"):
		return path, []byte(`{"count": 1}`)
	case strings.HasSuffix(path, "/import"):
		return path, []byte(`{"tokens": ["walk-` + rr.Method + `"]}`)
	case rr.Method == "POST" && strings.HasSuffix(path, "/admin/keys"):
		return path, []byte(`{"name": "walk-` + strings.ReplaceAll(strings.Trim(path, "/"), "/", "-") + `", "role": "reader"}`)
	case rr.Method == "POST" || rr.Method == "PUT" || (rr.Method == "DELETE" && strings.HasSuffix(path, "/delete")):
		if strings.HasSuffix(path, "/assign") {
			return path, nil
		}
		return path, []byte(`{"token": "no-such-token"}`)
	}
	return path, nil
}

// TestRoleTableWalk walks every registered route x every role x (own pool,
// other pool), with expectations generated from the one table, plus
// anonymous callers: 401 everywhere but on public routes.
func TestRoleTableWalk(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t)
	own := pod.KeysOfEachRole(t, "own-", []string{"default"})
	other := pod.KeysOfEachRole(t, "other-", []string{"elsewhere"})
	all := pod.KeysOfEachRole(t, "all-", nil)
	rules := httpapi.RegisteredRules(pod.App.Handler)
	if len(rules) < 15 {
		t.Fatalf("only %d routes registered", len(rules))
	}
	for _, rr := range rules {
		if !rr.Listed {
			t.Errorf("%s %s has no entry in the authorisation table (admins only by default)", rr.Method, rr.Path)
		}
		path, body := requestFor(rr, "default")

		status, code, hdr := statusAs(t, pod, apptest.Anonymous, rr.Method, path, body)
		switch {
		case rr.Public && (status == 401 || status == 403):
			t.Errorf("anonymous %s %s: %d on a public route", rr.Method, path, status)
		case !rr.Public && (status != 401 || code != "unauthenticated" || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer")):
			t.Errorf("anonymous %s %s: %d %q, WWW-Authenticate %q; want 401 unauthenticated with a Bearer challenge", rr.Method, path, status, code, hdr.Get("WWW-Authenticate"))
		}
		status, code, _ = statusAs(t, pod, "tl_"+strings.Repeat("A", 43), rr.Method, path, body)
		if !rr.Public && status != 401 {
			t.Errorf("unknown key %s %s: %d %q, want 401", rr.Method, path, status, code)
		}

		for _, role := range auth.Roles {
			for _, c := range []struct {
				scope string
				key   apptest.Key
				inOwn bool
			}{{"own pool", own[role], true}, {"every pool", all[role], true}, {"other pool", other[role], false}} {
				path, body := requestFor(rr, "default")
				if rr.Method == "POST" && strings.HasSuffix(rr.Path, "/admin/keys") {
					body = []byte(`{"name": "walk-` + c.key.Name + `", "role": "reader"}`)
				}
				want := rr.Allowed[role] && (c.inOwn || !rr.Pooled)
				status, code, _ := statusAs(t, pod, c.key.Secret, rr.Method, path, body)
				denied := status == 401 || status == 403
				if want && (denied || status >= 500) {
					t.Errorf("%s (%s) %s %s: %d %q, want it let through", role, c.scope, rr.Method, path, status, code)
				}
				if !want && (status != 403 || code != "forbidden") {
					t.Errorf("%s (%s) %s %s: %d %q, want 403 forbidden", role, c.scope, rr.Method, path, status, code)
				}
			}
		}
	}
}

// An operator releases and keeps alive only without lease_id: with one it
// would act as the lease's holder.
func TestOperatorForceOnly(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t)
	op := pod.CreateKey(t, "op", "operator", nil, nil)
	client := pod.CreateKey(t, "cl", "client", nil, nil)
	pod.Generate(t, 1)
	r := pod.CallAs(t, client.Secret, "POST", "/tokens/assign", nil)
	wantStatus(t, r, 200)
	var l apptest.Lease
	r.JSON(t, &l)
	for _, path := range []string{"/tokens/keep-alive", "/tokens/unblock"} {
		r = pod.CallAs(t, op.Secret, "POST", path, map[string]any{"token": l.Token, "lease_id": l.LeaseID})
		wantError(t, r, 403, "forbidden")
	}
	wantStatus(t, pod.CallAs(t, op.Secret, "POST", "/tokens/keep-alive", map[string]any{"token": l.Token}), 200)
	wantStatus(t, pod.CallAs(t, op.Secret, "POST", "/tokens/unblock", map[string]any{"token": l.Token}), 200)
}

// The table against DESIGN section 8's words, independently of the table.
func TestRoleTableMatchesSection8(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t)
	keys := pod.KeysOfEachRole(t, "", nil)
	for _, c := range []struct {
		role         auth.Role
		method, path string
		allowed      bool
	}{
		{auth.RoleReader, "POST", "/tokens/generate", false},
		{auth.RoleClient, "POST", "/tokens/generate", false},
		{auth.RoleOperator, "POST", "/tokens/generate", true},
		{auth.RoleOperator, "POST", "/tokens/import", true},
		{auth.RoleClient, "DELETE", "/tokens/delete", false},
		{auth.RoleOperator, "POST", "/tokens/assign", false},
		{auth.RoleReader, "POST", "/tokens/assign", false},
		{auth.RoleClient, "POST", "/tokens/assign", true},
		{auth.RoleReader, "POST", "/tokens/unblock", false},
		{auth.RoleReader, "GET", "/tokens/stats", true},
		{auth.RoleClient, "GET", "/tokens/stats", true},
		{auth.RoleReader, "GET", "/tokens/some-token", true},
		{auth.RoleClient, "GET", "/tokens/events", false},
		{auth.RoleReader, "GET", "/tokens/events", true},
		{auth.RoleOperator, "GET", "/admin/keys", false},
		{auth.RoleAdmin, "GET", "/admin/keys", true},
	} {
		var body []byte
		if c.method == "POST" && !strings.HasSuffix(c.path, "/assign") {
			body = []byte(`{"count": 1, "tokens": ["x"]}`)
			if strings.HasSuffix(c.path, "/unblock") {
				body = []byte(`{"token": "x"}`)
			}
		}
		status, code, _ := statusAs(t, pod, keys[c.role].Secret, c.method, c.path, body)
		if got := status != 403; got != c.allowed {
			t.Errorf("%s %s %s: %d %q, allowed should be %v", c.role, c.method, c.path, status, code, c.allowed)
		}
	}
}
