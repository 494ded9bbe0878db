package httpapi_test

// The API as the tests speak it: typed calls for the common steps, and the
// checks every answer must pass (status, JSON error shape).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

// leaseResp is the answer of an assign.
type leaseResp struct {
	Token          string    `json:"token"`
	LeaseID        int64     `json:"lease_id"`
	LeaseExpiresAt time.Time `json:"lease_expires_at"`
	AliveUntil     time.Time `json:"alive_until"`
	Holder         *string   `json:"holder"`
}

// tokenResp is the answer of a lookup or a keep-alive.
type tokenResp struct {
	Token          string     `json:"token"`
	State          string     `json:"state"`
	AliveUntil     time.Time  `json:"alive_until"`
	CreatedAt      *time.Time `json:"created_at"`
	LeaseID        *int64     `json:"lease_id"`
	LeaseExpiresAt *time.Time `json:"lease_expires_at"`
	Holder         *string    `json:"holder"`
}

type statsResp struct {
	Free     int64 `json:"free"`
	Assigned int64 `json:"assigned"`
	Total    int64 `json:"total"`
}

// tokenPath is GET/DELETE /tokens/{token} with the value percent-encoded as
// one path segment.
func tokenPath(value string) string { return "/tokens/" + url.PathEscape(value) }

// generate adds n tokens and returns them in the order the service reported.
func generate(t testing.TB, pod *apptest.Pod, n int) []string {
	t.Helper()
	r := pod.Call(t, "POST", "/tokens/generate", map[string]any{"count": n})
	wantStatus(t, r, http.StatusCreated)
	var out struct{ Tokens []string }
	r.JSON(t, &out)
	if len(out.Tokens) != n {
		t.Fatalf("generate %d returned %d tokens", n, len(out.Tokens))
	}
	return out.Tokens
}

// importValues imports values and returns the service's split.
func importValues(t testing.TB, pod *apptest.Pod, values ...string) (imported, existing []string) {
	t.Helper()
	r := pod.Call(t, "POST", "/tokens/import", map[string]any{"tokens": values})
	wantStatus(t, r, http.StatusCreated)
	var out struct{ Imported, Existing []string }
	r.JSON(t, &out)
	return out.Imported, out.Existing
}

// assign leases a token; body is the JSON body (nil for none).
func assign(t testing.TB, pod *apptest.Pod, body any) leaseResp {
	t.Helper()
	r := pod.Call(t, "POST", "/tokens/assign", body)
	wantStatus(t, r, http.StatusOK)
	var l leaseResp
	r.JSON(t, &l)
	if l.Token == "" || l.LeaseID < 1 {
		t.Fatalf("assign returned no token or lease: %s", r.Body)
	}
	return l
}

// lookup reads a live token.
func lookup(t testing.TB, pod *apptest.Pod, token string) tokenResp {
	t.Helper()
	r := pod.Call(t, "GET", tokenPath(token), nil)
	wantStatus(t, r, http.StatusOK)
	var v tokenResp
	r.JSON(t, &v)
	return v
}

func poolStats(t testing.TB, pod *apptest.Pod) statsResp {
	t.Helper()
	r := pod.Call(t, "GET", "/tokens/stats", nil)
	wantStatus(t, r, http.StatusOK)
	var s statsResp
	r.JSON(t, &s)
	return s
}

func wantStatus(t testing.TB, r apptest.Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
}

// wantError checks status and that the body is exactly
// {"error": {"code": code, "message": <non-empty>}}.
func wantError(t testing.TB, r apptest.Response, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d (%s): %s", r.Status, status, code, r.Body)
	}
	if err := checkErrorBody(r.Body); err != nil {
		t.Fatalf("%v: %s", err, r.Body)
	}
	if got := r.ErrorCode(t); got != code {
		t.Fatalf("error code %q, want %q: %s", got, code, r.Body)
	}
}

// checkErrorBody reports whether b is exactly the contract's error shape.
func checkErrorBody(b []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return fmt.Errorf("error body is not a JSON object: %v", err)
	}
	if len(top) != 1 || top["error"] == nil {
		return fmt.Errorf("error body must hold exactly the key \"error\"")
	}
	var detail map[string]any
	if err := json.Unmarshal(top["error"], &detail); err != nil {
		return fmt.Errorf("error.error is not an object: %v", err)
	}
	code, _ := detail["code"].(string)
	msg, _ := detail["message"].(string)
	if len(detail) != 2 || code == "" || msg == "" {
		return fmt.Errorf("error must hold exactly a non-empty code and message")
	}
	return nil
}

// wantHealthy checks that the pod still answers its liveness probe.
func wantHealthy(t testing.TB, pod *apptest.Pod) {
	t.Helper()
	wantStatus(t, pod.Call(t, "GET", "/healthz", nil), http.StatusOK)
}

// send is a request that is safe to make from any goroutine: it returns
// errors instead of failing the test.
func send(pod *apptest.Pod, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, pod.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := pod.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, b, nil
}

// errorCodeOf returns error.code of an error body, or "" when there is none.
func errorCodeOf(b []byte) string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return e.Error.Code
}

// oneLine shortens a body for a failure message.
func oneLine(b []byte) string {
	s := strings.ReplaceAll(string(b), "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// wantAPITime checks a time as the contract writes it: RFC 3339 in UTC with
// sub-second precision.
func wantAPITime(t testing.TB, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("time %#v is not a string", v)
	}
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || !strings.HasSuffix(s, "Z") || !strings.Contains(s, ".") {
		t.Fatalf("time %q is not RFC 3339 UTC with sub-second precision (%v)", s, err)
	}
	return ts
}
