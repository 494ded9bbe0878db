package httpapi_test

// The checks every answer must pass (status, JSON error shape); the typed
// calls for the common steps are apptest's.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

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

// checkErrorBody reports whether b is exactly the contract's error shape
// (DESIGN section 2, with the request id of issue 12).
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
	id, _ := detail["request_id"].(string)
	if len(detail) != 3 || code == "" || msg == "" || id == "" {
		return fmt.Errorf("error must hold exactly a non-empty code, message and request_id")
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
	r, err := pod.Send(method, path, body)
	return r.Status, r.Body, err
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
