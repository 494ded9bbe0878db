package httpapi_test

// Edges of the API found by trying it: route words under a method they do
// not take, and escaped UTF-16 surrogates.

import (
	"net/http"
	"testing"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

func TestRouteWordsUnderAWrongMethodAnswer405(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	for _, tc := range []struct{ method, path, allow string }{
		{"GET", "/tokens/generate", "POST"},
		{"DELETE", "/tokens/generate", "POST"},
		{"GET", "/tokens/import", "POST"},
		{"DELETE", "/tokens/assign", "GET, POST"},
		{"GET", "/tokens/unblock", "POST"},
		{"GET", "/tokens/delete", "DELETE"},
		{"GET", "/tokens/keep-alive", "POST, PUT"},
		{"DELETE", "/tokens/stats", "GET"},
		{"DELETE", "/tokens/events", "GET"},
		{"PATCH", "/tokens/stats", "GET"}, // gin's own 405 agrees
	} {
		r, err := http.NewRequest(tc.method, pod.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := pod.Client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: status %d, Allow %q; want 405, Allow %q",
				tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), tc.allow)
		}
	}
	// A token value still reaches its routes.
	tok := pod.Generate(t, 1)[0]
	wantStatus(t, pod.Do(t, "GET", apptest.TokenPath(tok), nil), http.StatusOK)
	wantStatus(t, pod.Do(t, "DELETE", apptest.TokenPath(tok), nil), http.StatusOK)
}

func TestEscapedSurrogatePairIsOneCharacter(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	r := pod.Do(t, "POST", "/tokens/import", []byte(`{"tokens":["key-\ud83d\ude00"]}`))
	wantStatus(t, r, http.StatusCreated)
	if got := pod.Lookup(t, "key-😀"); got.Token != "key-😀" {
		t.Fatalf("stored %q, want key-😀", got.Token)
	}
	wantError(t, pod.Do(t, "POST", "/tokens/import", []byte(`{"tokens":["key-\ud800"]}`)),
		http.StatusBadRequest, "invalid_request")
	wantError(t, pod.Do(t, "GET", apptest.TokenPath("key-\uFFFD"), nil), http.StatusNotFound, "not_found")
}
