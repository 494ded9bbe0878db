package httpapi_test

// Any bad request gets a 4xx JSON error, changes nothing, and leaves the pod
// healthy.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

// badRequest is one request that the service must refuse.
type badRequest struct {
	name         string
	method, path string
	body         string
	chunked      bool   // send without Content-Length
	status       int    // the exact status expected; 0: any 4xx
	code         string // the exact code expected; "": any
}

// sendRaw sends body as it is; chunked hides its length from the server.
func sendRaw(t testing.TB, pod *apptest.Pod, method, path, body string, chunked bool) apptest.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd) // not a type whose length http can see
		}
	}
	r, err := pod.SendRaw(method, path, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// q renders a Go value as JSON, for building bodies around real tokens.
func q(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func badRequests(free, leased string, leaseID int64) []badRequest {
	huge := strings.Repeat("A", 100<<10)     // a 100 KB token string
	over8MiB := strings.Repeat("B", 8<<20+1) // more than any body limit
	manyValues := make([]string, 10001)
	for i := range manyValues {
		manyValues[i] = fmt.Sprintf("value-%d", i)
	}
	longValues := make([]string, 15000) // about 7.8 MB: under the import limit
	for i := range longValues {
		longValues[i] = fmt.Sprintf("%0513d", i)
	}
	const inv, tooLarge = "invalid_request", "payload_too_large"
	ref := func(tok string, leaseID any) string {
		return fmt.Sprintf(`{"token":%s,"lease_id":%s}`, q(tok), q(leaseID))
	}

	var cases []badRequest
	add := func(method, path, name, body string, status int, code string) {
		cases = append(cases, badRequest{name: name, method: method, path: path, body: body, status: status, code: code})
	}

	// Every JSON endpoint refuses malformed and oversized bodies alike.
	for _, ep := range []struct{ method, path string }{
		{"POST", "/tokens/generate"}, {"POST", "/tokens/import"}, {"POST", "/tokens/assign"},
		{"POST", "/tokens/unblock"}, {"DELETE", "/tokens/delete"}, {"POST", "/tokens/keep-alive"},
		{"PUT", "/tokens/keep-alive"},
	} {
		m, p := ep.method, ep.path
		add(m, p, "malformed JSON", `{"token": `, 400, inv)
		add(m, p, "not JSON", `count=1`, 400, inv)
		add(m, p, "a JSON array", `[1,2]`, 400, inv)
		add(m, p, "a JSON string", `"stats"`, 400, inv)
		add(m, p, "two objects", `{}{}`, 400, inv)
		add(m, p, "unknown field", `{"bogus":1}`, 400, inv)
		add(m, p, "8 MiB body", `{"pad":"`+over8MiB+`"}`, 413, tooLarge)
		cases = append(cases, badRequest{name: "2 MiB chunked body", method: m, path: p,
			body: `{"pad":"` + over8MiB[:2<<20] + `"}`, chunked: true, status: 0})
	}

	// generate
	g := func(name, body string) { add("POST", "/tokens/generate", name, body, 400, inv) }
	g("empty body", ``)
	g("empty object", `{}`)
	g("null count", `{"count":null}`)
	g("count as string", `{"count":"5"}`)
	g("count as float", `{"count":5.5}`)
	g("count as bool", `{"count":true}`)
	g("zero count", `{"count":0}`)
	g("negative count", `{"count":-1}`)
	g("count over 10000", `{"count":10001}`)
	g("huge count", `{"count":1e10}`)
	g("count past int64", `{"count":99999999999999999999}`)
	g("JSON null", `null`)

	// import
	i := func(name, body string) { add("POST", "/tokens/import", name, body, 400, inv) }
	i("empty body", ``)
	i("missing tokens", `{}`)
	i("null tokens", `{"tokens":null}`)
	i("tokens as string", `{"tokens":"a"}`)
	i("tokens of numbers", `{"tokens":[1,2]}`)
	i("no values", `{"tokens":[]}`)
	i("empty value", `{"tokens":["ok",""]}`)
	i("duplicate values", `{"tokens":["dup","other","dup"]}`)
	i("a live value twice", `{"tokens":[`+q(free)+`,`+q(free)+`]}`)
	i("NUL in value", `{"tokens":["ok","a\u0000b"]}`)
	i("newline in value", `{"tokens":["ok","a\nb"]}`)
	i("513-byte value", `{"tokens":[`+q(strings.Repeat("x", 513))+`]}`)
	i("100 KB value", `{"tokens":["ok",`+q(huge)+`]}`)
	i("route word", `{"tokens":["ok","assign"]}`)
	i("invalid UTF-8 value", "{\"tokens\":[\"ok\",\"key-\xff\xfe\"]}")
	// encoding/json would store an escaped lone surrogate as U+FFFD.
	i("lone high surrogate", `{"tokens":["ok","key-\ud800"]}`)
	i("lone low surrogate", `{"tokens":["ok","key-\uDC00-x"]}`)
	i("high surrogate at the end", `{"tokens":["\uD83D"]}`)
	i("two high surrogates", `{"tokens":["\ud83d\ud83d"]}`)
	i("reversed pair", `{"tokens":["\ude00\ud83d"]}`)
	i("high surrogate then a letter escape", `{"tokens":["\ud83d\u0041"]}`)
	i("10001 values", q(map[string]any{"tokens": manyValues}))
	i("7.8 MB of over-long values", q(map[string]any{"tokens": longValues}))
	add("POST", "/tokens/import", "over 8 MiB of values", `{"tokens":["`+over8MiB+`"]}`, 413, tooLarge)

	// assign: body and query
	a := func(name, path, body string) {
		add("POST", path, name, body, 400, inv)
		add("GET", path, name, body, 400, inv)
	}
	a("ttl as bool", "/tokens/assign", `{"ttl":true}`)
	a("ttl as object", "/tokens/assign", `{"ttl":{}}`)
	a("ttl not a duration", "/tokens/assign", `{"ttl":"forever"}`)
	a("ttl zero", "/tokens/assign", `{"ttl":"0s"}`)
	a("ttl negative", "/tokens/assign", `{"ttl":-1}`)
	a("ttl below 100ms", "/tokens/assign", `{"ttl":0.05}`)
	a("ttl above MAX_LEASE_TTL", "/tokens/assign", `{"ttl":"1h1s"}`)
	a("ttl absurd", "/tokens/assign", `{"ttl":1e300}`)
	a("holder as number", "/tokens/assign", `{"holder":7}`)
	a("holder empty", "/tokens/assign", `{"holder":""}`)
	a("holder with control", "/tokens/assign", `{"holder":"a\u0007b"}`)
	a("holder of 201 characters", "/tokens/assign", q(map[string]any{"holder": strings.Repeat("é", 201)}))
	a("holder of 100 KB", "/tokens/assign", q(map[string]any{"holder": huge}))
	a("holder of invalid UTF-8", "/tokens/assign", "{\"holder\":\"w-\xff\"}")
	a("holder with a lone surrogate", "/tokens/assign", `{"holder":"w-\udfff"}`)
	a("query ttl not a duration", "/tokens/assign?ttl=forever", ``)
	a("query ttl NaN", "/tokens/assign?ttl=NaN", ``)
	a("query ttl Inf", "/tokens/assign?ttl=Inf", ``)
	a("query ttl zero", "/tokens/assign?ttl=0", ``)
	a("query ttl tiny", "/tokens/assign?ttl=1e-12", ``)
	a("query ttl negative", "/tokens/assign?ttl=-5s", ``)
	a("query ttl above MAX_LEASE_TTL", "/tokens/assign?ttl=3601", ``)
	a("query holder empty", "/tokens/assign?holder=", ``)
	a("query holder with control", "/tokens/assign?holder=%0A", ``)
	a("query holder of invalid UTF-8", "/tokens/assign?holder=w-%FF", ``)
	a("query holder of 201 characters", "/tokens/assign?holder="+strings.Repeat("h", 201), ``)
	a("query wait not a duration", "/tokens/assign?wait=later", ``)
	a("query wait negative", "/tokens/assign?wait=-1s", ``)
	a("query wait above 60s", "/tokens/assign?wait=61s", ``)
	a("query wait absurd", "/tokens/assign?wait=1e300", ``)

	// unblock and keep-alive, on real tokens
	for _, ep := range []struct{ method, path string }{{"POST", "/tokens/unblock"}, {"POST", "/tokens/keep-alive"}, {"PUT", "/tokens/keep-alive"}} {
		r := func(name, body string) { add(ep.method, ep.path, name, body, 400, inv) }
		r("empty body", ``)
		r("missing token", `{"lease_id":`+q(leaseID)+`}`)
		r("null token", `{"token":null}`)
		r("empty token", `{"token":""}`)
		r("token as number", `{"token":42}`)
		r("token as array", `{"token":[`+q(leased)+`]}`)
		r("100 KB token", `{"token":`+q(huge)+`}`)
		r("token with control", `{"token":"a\tb"}`)
		r("token of invalid UTF-8", "{\"token\":\"\xff\xfe\"}")
		r("lease id zero", ref(leased, 0))
		r("lease id negative", ref(leased, -leaseID))
		r("lease id as string", ref(leased, fmt.Sprint(leaseID)))
		r("lease id as float", ref(leased, float64(leaseID)+0.5))
		r("lease id past int64", `{"token":`+q(leased)+`,"lease_id":99999999999999999999}`)
		r("unknown field beside a valid ref", `{"token":`+q(leased)+`,"lease_id":`+q(leaseID)+`,"force":true}`)
	}

	// delete with a body, on real tokens
	d := func(name, body string) { add("DELETE", "/tokens/delete", name, body, 400, inv) }
	d("empty body", ``)
	d("missing token", `{}`)
	d("empty token", `{"token":""}`)
	d("token as number", `{"token":1}`)
	d("100 KB token", `{"token":`+q(huge)+`}`)
	d("lease id not accepted", ref(free, leaseID))
	d("unknown field", `{"token":`+q(free)+`,"cascade":true}`)

	// path routes: any value that is not a live token is not_found
	for _, m := range []string{"GET", "DELETE"} {
		add(m, apptest.TokenPath(huge), "100 KB token in the path", ``, 404, "not_found")
		add(m, apptest.TokenPath("a\x00b"), "NUL in the path", ``, 404, "not_found")
	}

	// routes and methods that do not exist
	add("PATCH", "/tokens/assign", "wrong method", `{}`, 405, "method_not_allowed")
	// A route word is a route, not a token, under every method.
	add("GET", "/tokens/unblock", "GET on a POST-only route word", ``, 405, "method_not_allowed")
	add("GET", "/tokens/generate", "GET on generate", ``, 405, "method_not_allowed")
	add("DELETE", "/tokens/stats", "DELETE on stats", ``, 405, "method_not_allowed")
	add("DELETE", "/tokens/assign", "DELETE on assign", ``, 405, "method_not_allowed")
	add("GET", "/tokens/delete", "GET on delete", ``, 405, "method_not_allowed")
	add("POST", "/tokens", "unknown route", `{}`, 404, "route_not_found")
	add("POST", apptest.TokenPath(free), "POST to a token", `{}`, 405, "method_not_allowed")
	return cases
}

func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	tokens := pod.Generate(t, 5)
	pod.Import(t, "imported-key")
	// A lease that outlives the test however slow the machine: the check at
	// the end wants it unchanged.
	l := pod.Assign(t, map[string]any{"holder": "holder-1", "ttl": "1h"})
	pod.Assign(t, nil)
	free := tokens[0]
	for _, tok := range tokens {
		if pod.Lookup(t, tok).State == "free" {
			free = tok
		}
	}

	for _, tc := range badRequests(free, l.Token, l.LeaseID) {
		t.Run(tc.method+" "+tc.path[:min(len(tc.path), 40)]+" "+tc.name, func(t *testing.T) {
			before := dbSnapshot(t, pod)
			r := sendRaw(t, pod, tc.method, tc.path, tc.body, tc.chunked)
			if r.Status < 400 || r.Status > 499 {
				t.Fatalf("status %d, want 4xx: %s", r.Status, oneLine(r.Body))
			}
			if tc.status != 0 && r.Status != tc.status {
				t.Errorf("status %d, want %d: %s", r.Status, tc.status, oneLine(r.Body))
			}
			if err := checkErrorBody(r.Body); err != nil {
				t.Fatalf("%v: %s", err, oneLine(r.Body))
			}
			if code := errorCodeOf(r.Body); tc.code != "" && code != tc.code {
				t.Errorf("code %q, want %q: %s", code, tc.code, oneLine(r.Body))
			}
			if after := dbSnapshot(t, pod); after != before {
				t.Fatalf("the refused request changed the data:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			wantHealthy(t, pod)
		})
	}

	// The pod still serves real requests.
	if v := pod.Lookup(t, l.Token); v.State != "assigned" || *v.LeaseID != l.LeaseID {
		t.Fatalf("the lease changed: %+v", v)
	}
	wantStatus(t, pod.Call(t, "POST", "/tokens/unblock", map[string]any{"token": l.Token, "lease_id": l.LeaseID}), http.StatusOK)
	if !bytes.Contains(pod.Call(t, "GET", "/readyz", nil).Body, []byte("ready")) {
		t.Fatal("the pod is not ready after the bad requests")
	}
}
