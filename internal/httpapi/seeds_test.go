package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/config"
)

type seedStep struct {
	name   string
	method string
	path   string
	body   string // raw; "" sends none
	status int
	want   string // the exact body, without the final newline; "" checks nothing
}

// runSeedSteps replays steps; {token} in a body or want is the token of the
// last assign.
func runSeedSteps(t *testing.T, pod *apptest.Pod, token *string, steps []seedStep) {
	t.Helper()
	for _, s := range steps {
		body := strings.ReplaceAll(s.body, "{token}", *token)
		var raw []byte
		if s.body != "" {
			raw = []byte(body)
		}
		r := pod.Do(t, s.method, s.path, raw)
		got := strings.TrimSuffix(string(r.Body), "\n")
		want := strings.ReplaceAll(s.want, "{token}", *token)
		if r.Status != s.status || (s.want != "" && got != want) {
			t.Fatalf("%s: %s %s %s\n got %d %s\nwant %d %s", s.name, s.method, s.path, body, r.Status, got, s.status, want)
		}
		if strings.Contains(s.path, "ssign") || strings.Contains(s.path, "acquire") {
			if r.Status == 200 {
				var v struct{ Token string }
				r.JSON(t, &v)
				*token = v.Token
			}
		}
	}
}

// TestFirstSeedClientFlow replays the first seed's (NestJS) client.
func TestFirstSeedClientFlow(t *testing.T) {
	pod := apptest.NewPod(t)
	token := ""
	r := pod.Call(t, "POST", "/token/generate", map[string]any{"count": 2})
	var gen struct{ Tokens []string }
	r.JSON(t, &gen)
	if r.Status != 201 || len(gen.Tokens) != 2 || len(r.Map(t)) != 1 {
		t.Fatalf("generate: %d %s", r.Status, r.Body)
	}
	const missingToken = `{"statusCode":400,"message":["token should not be empty","token must be a string"],"error":"Bad Request"}`
	runSeedSteps(t, pod, &token, []seedStep{
		{"assign", "GET", "/token/assign", "", 200, ""},
		{"assign again", "GET", "/token/assign", "", 200, ""},
		{"assign none free", "GET", "/token/assign", "", 404, `{"statusCode":404,"message":"No available tokens"}`},
		{"keep-alive", "PUT", "/token/keep-alive", `{"token":"{token}"}`, 200, `{"message":"Token keep-alive extended"}`},
		{"unblock", "POST", "/token/unblock", `{"token":"{token}"}`, 201, `{"message":"Token unblocked"}`},
		{"unblock again", "POST", "/token/unblock", `{"token":"{token}"}`, 404, `{"statusCode":404,"message":"Token not found or already unblocked"}`},
		{"unblock unknown", "POST", "/token/unblock", `{"token":"nope"}`, 404, `{"statusCode":404,"message":"Token not found or already unblocked"}`},
		{"assign the freed token", "GET", "/token/assign", "", 200, `{"token":"{token}"}`},
		{"delete", "DELETE", "/token/delete", `{"token":"{token}"}`, 200, `{"message":"Token deleted"}`},
		{"delete again", "DELETE", "/token/delete", `{"token":"{token}"}`, 404, `{"statusCode":404,"message":"Token not found"}`},
		{"keep-alive deleted", "PUT", "/token/keep-alive", `{"token":"{token}"}`, 404, `{"statusCode":404,"message":"Token not found"}`},
		{"generate without count", "POST", "/token/generate", `{}`, 400, `{"statusCode":400,"message":["count must be a positive integer"],"error":"Bad Request"}`},
		{"generate count 0", "POST", "/token/generate", `{"count":0}`, 400, `{"statusCode":400,"message":["count must be a positive integer"],"error":"Bad Request"}`},
		{"generate count string", "POST", "/token/generate", `{"count":"3"}`, 400, `{"statusCode":400,"message":["count must be a positive integer"],"error":"Bad Request"}`},
		{"generate no body", "POST", "/token/generate", "", 400, `{"statusCode":400,"message":["count must be a positive integer"],"error":"Bad Request"}`},
		{"unblock without token", "POST", "/token/unblock", `{}`, 400, missingToken},
		{"unblock empty token", "POST", "/token/unblock", `{"token":""}`, 400, missingToken},
		{"delete without token", "DELETE", "/token/delete", `{"other":1}`, 400, missingToken},
		{"keep-alive token not a string", "PUT", "/token/keep-alive", `{"token":5}`, 400, missingToken},
		{"malformed JSON", "PUT", "/token/keep-alive", `{"token":`, 400, `{"statusCode":400,"message":["request body must be a JSON object"],"error":"Bad Request"}`},
	})
}

// TestSecondSeedClientFlow replays the second seed's (FastAPI) client.
func TestSecondSeedClientFlow(t *testing.T) {
	pod := apptest.NewPod(t, apptest.WithConfig(func(c *config.Config) { c.KeepaliveTTL = config.Duration(time.Second) }), apptest.WithoutSweeper())
	token := ""
	runSeedSteps(t, pod, &token, []seedStep{
		{"acquire none", "GET", "/token/acquireToken", "", 400, `{"detail":"No available tokens"}`},
		{"generate", "POST", "/token/generateToken", "", 200, `"token successfully generated"`},
		{"generate with a body", "POST", "/token/generateToken", `{}`, 200, `"token successfully generated"`},
		{"acquire", "GET", "/token/acquireToken", "", 200, ""},
		{"keep-alive", "PUT", "/token/keepAlive", `{"token":"{token}"}`, 200, `"token keep-alive extended"`},
		{"unblock", "PUT", "/token/unblock", `{"token":"{token}"}`, 200, `"token unblocked"`},
		{"unblock free", "PUT", "/token/unblock", `{"token":"{token}"}`, 400, `{"detail":"token is not assigned"}`},
		{"acquire the freed one", "GET", "/token/acquireToken", "", 200, ""},
		{"unblockToken", "PUT", "/token/unblockToken", `{"token":"{token}"}`, 200, `"token unblocked"`},
		{"deleteToken", "DELETE", "/token/deleteToken", `{"token":"{token}"}`, 200, `"token deleted"`},
		{"deleteToken again", "DELETE", "/token/deleteToken", `{"token":"{token}"}`, 400, `{"detail":"token not found"}`},
		{"keep-alive deleted", "PUT", "/token/keepAlive", `{"token":"{token}"}`, 400, `{"detail":"token not found"}`},
		{"unblockToken unknown", "PUT", "/token/unblockToken", `{"token":"nope"}`, 400, `{"detail":"token not found"}`},
		{"keep-alive without token", "PUT", "/token/keepAlive", `{}`, 400, `{"detail":"token is required"}`},
		{"unblock empty token", "PUT", "/token/unblock", `{"token":""}`, 400, `{"detail":"token is required"}`},
		{"deleteToken no body", "DELETE", "/token/deleteToken", "", 400, `{"detail":"token is required"}`},
		{"deleteExpiredToken", "DELETE", "/token/deleteExpiredToken", "", 200, `"expired tokens deleted"`},
	})
	// The remaining token dies after KEEPALIVE_TTL (1s); with the sweeper
	// off, only deleteExpiredToken removes its row.
	time.Sleep(1100 * time.Millisecond) // not a sync: lets alive_until pass on the database clock
	var stats struct{ Total int }
	pod.Do(t, "GET", "/tokens/stats", nil).JSON(t, &stats)
	if stats.Total != 1 {
		t.Fatalf("before deleteExpiredToken: total %d, want 1", stats.Total)
	}
	runSeedSteps(t, pod, &token, []seedStep{
		{"deleteExpiredToken", "DELETE", "/token/deleteExpiredToken", "", 200, `"expired tokens deleted"`},
	})
	pod.Do(t, "GET", "/tokens/stats", nil).JSON(t, &stats)
	if stats.Total != 0 {
		t.Fatalf("after deleteExpiredToken: total %d, want 0", stats.Total)
	}
	var s string
	if err := json.Unmarshal(pod.Do(t, "POST", "/token/generateToken", nil).Body, &s); err != nil || s == "" {
		t.Fatalf("generateToken answer is not a JSON string: %v", err)
	}
}

// TestSeedRoutesLeaseSemantics: a seed unblock frees the live lease
// without a lease id; a seed keep-alive refreshes alive_until only, never
// the lease.
func TestSeedRoutesLeaseSemantics(t *testing.T) {
	pod := apptest.NewPod(t)
	pod.Call(t, "POST", "/tokens/generate", map[string]int{"count": 1})
	a := pod.Call(t, "POST", "/tokens/assign", map[string]string{"ttl": "30s", "holder": "new-client"}).Map(t)
	token := a["token"].(string)
	before := pod.Do(t, "GET", "/tokens/"+token, nil).Map(t)
	time.Sleep(20 * time.Millisecond) // not a sync: lets the database clock move
	for _, path := range []string{"/token/keep-alive", "/token/keepAlive"} {
		if r := pod.Call(t, "PUT", path, map[string]string{"token": token}); r.Status != 200 {
			t.Fatalf("%s: %d %s", path, r.Status, r.Body)
		}
	}
	after := pod.Do(t, "GET", "/tokens/"+token, nil).Map(t)
	if after["lease_expires_at"] != before["lease_expires_at"] || after["alive_until"] == before["alive_until"] || after["lease_id"] != a["lease_id"] {
		t.Fatalf("seed keep-alive: before %v, after %v", before, after)
	}
	if r := pod.Call(t, "POST", "/token/unblock", map[string]string{"token": token}); r.Status != 201 {
		t.Fatalf("seed unblock of another client's lease: %d %s", r.Status, r.Body)
	}
	if got := pod.Do(t, "GET", "/tokens/"+token, nil).Map(t); got["state"] != "free" {
		t.Fatalf("after seed unblock: %v", got)
	}
}

// SEED_ROUTES_ANONYMOUS=true lets callers without a credential use the
// seeds' routes, and only those, in pool default; off (the default) they
// get 401 there like everywhere else.
func TestSeedRoutesAnonymous(t *testing.T) {
	t.Parallel()
	seedCalls := []struct{ method, path, body string }{
		{"POST", "/token/generate", `{"count": 2}`},
		{"POST", "/token/generateToken", ""},
		{"GET", "/token/assign", ""},
		{"GET", "/token/acquireToken", ""},
		{"PUT", "/token/keep-alive", `{"token": "{token}"}`},
		{"PUT", "/token/keepAlive", `{"token": "{token}"}`},
		{"POST", "/token/unblock", `{"token": "{token}"}`},
		{"GET", "/token/assign", ""},
		{"PUT", "/token/unblock", `{"token": "{token}"}`},
		{"GET", "/token/assign", ""},
		{"PUT", "/token/unblockToken", `{"token": "{token}"}`},
		{"DELETE", "/token/delete", `{"token": "{token}"}`},
		{"GET", "/token/acquireToken", ""},
		{"DELETE", "/token/deleteToken", `{"token": "{token}"}`},
		{"DELETE", "/token/deleteExpiredToken", ""},
	}
	others := []struct{ method, path, body string }{
		{"GET", "/tokens/stats", ""},
		{"POST", "/tokens/generate", `{"count": 1}`},
		{"POST", "/tokens/assign", ""},
		{"POST", "/pools/default/tokens/assign", ""},
		{"GET", "/pools/default", ""},
		{"GET", "/events", ""},
		{"GET", "/admin/keys", ""},
	}
	run := func(t *testing.T, pod *apptest.Pod, want func(method, path string, status int) bool) {
		token := ""
		for _, c := range seedCalls {
			var body []byte
			if c.body != "" {
				body = []byte(strings.ReplaceAll(c.body, "{token}", token))
			}
			r := pod.DoAs(t, apptest.Anonymous, c.method, c.path, body)
			if !want(c.method, c.path, r.Status) {
				t.Fatalf("anonymous %s %s: %d %s", c.method, c.path, r.Status, r.Body)
			}
			if r.Status == 200 && (strings.Contains(c.path, "ssign") || strings.Contains(c.path, "acquire")) {
				var v struct{ Token string }
				if json.Unmarshal(r.Body, &v) == nil && v.Token != "" {
					token = v.Token
				}
			}
		}
		for _, c := range others {
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			wantError(t, pod.DoAs(t, apptest.Anonymous, c.method, c.path, body), 401, "unauthenticated")
		}
		// A credential that is sent is checked, even on the seeds' routes.
		wantError(t, pod.DoAs(t, "tl_"+strings.Repeat("A", 43), "GET", "/token/assign", nil), 401, "unauthenticated")
	}

	t.Run("on", func(t *testing.T) {
		t.Parallel()
		pod := apptest.NewPod(t, apptest.WithConfig(func(c *config.Config) { c.SeedRoutesAnonymous = true }))
		run(t, pod, func(method, path string, status int) bool { return status >= 200 && status < 300 })
		// Everything happened in pool default: 3 generated, 2 deleted, the
		// first assigned still held.
		if s := pod.Stats(t); s.Total != 1 || s.Assigned != 1 {
			t.Fatalf("pool default after the anonymous flow: %+v, want 1 token, assigned", s)
		}
		// A client key's lease is force-released by an anonymous seed
		// unblock (operator rights: unfenced, as the seeds' clients expect).
		cl := pod.CreateKey(t, "seed-client", "client", nil, nil)
		pod.Generate(t, 1)
		r := pod.CallAs(t, cl.Secret, "POST", "/tokens/assign", nil)
		wantStatus(t, r, 200)
		var l apptest.Lease
		r.JSON(t, &l)
		wantStatus(t, pod.DoAs(t, apptest.Anonymous, "POST", "/token/unblock", []byte(`{"token": "`+l.Token+`"}`)), 201)
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		pod := apptest.NewPod(t)
		pod.Generate(t, 2)
		run(t, pod, func(method, path string, status int) bool { return status == 401 })
		if s := pod.Stats(t); s.Total != 2 || s.Assigned != 0 {
			t.Fatalf("pool default after refused anonymous calls: %+v, want it unchanged", s)
		}
	})
}
