package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

// The whole life of one token through the API: generate, assign, look up,
// unblock, delete.
func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t)

	var gen struct{ Tokens []string }
	r := pod.Call(t, "POST", "/tokens/generate", map[string]any{"count": 1})
	if r.Status != http.StatusCreated {
		t.Fatalf("generate: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &gen)
	if len(gen.Tokens) != 1 || len(gen.Tokens[0]) < 22 {
		t.Fatalf("generate returned %v", gen.Tokens)
	}
	token := gen.Tokens[0]

	r = pod.Call(t, "POST", "/tokens/assign", map[string]any{"holder": "worker-1"})
	if r.Status != http.StatusOK {
		t.Fatalf("assign: %d %s", r.Status, r.Body)
	}
	lease := r.Map(t)
	if lease["token"] != token || lease["holder"] != "worker-1" || lease["lease_id"].(float64) < 1 {
		t.Fatalf("assign returned %v", lease)
	}

	r = pod.Call(t, "GET", "/tokens/"+token, nil)
	if got := r.Map(t); r.Status != 200 || got["state"] != "assigned" || got["holder"] != "worker-1" {
		t.Fatalf("lookup: %d %s", r.Status, r.Body)
	}

	r = pod.Call(t, "POST", "/tokens/unblock", map[string]any{"token": token, "lease_id": lease["lease_id"]})
	if got := r.Map(t); r.Status != 200 || got["state"] != "free" {
		t.Fatalf("unblock: %d %s", r.Status, r.Body)
	}

	r = pod.Call(t, "DELETE", "/tokens/"+token, nil)
	if r.Status != 200 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	r = pod.Call(t, "GET", "/tokens/"+token, nil)
	if r.Status != 404 || r.ErrorCode(t) != "not_found" {
		t.Fatalf("lookup after delete: %d %s", r.Status, r.Body)
	}
}
