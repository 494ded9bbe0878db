package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/tokenlease/tokenlease/internal/tokens"
)

// Errors without an entry of their own in the table: a client that hung up
// is not the pod's failure (no 5xx in the metrics), a timeout is.
func TestClassifyCancellation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"client hung up", fmt.Errorf("assign: %w", context.Canceled), statusClientClosed, "client_closed"},
		{"timed out", fmt.Errorf("assign: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, "unavailable"},
		{"database down", fmt.Errorf("assign: %w", tokens.ErrUnavailable), http.StatusServiceUnavailable, "unavailable"},
		{"unknown", fmt.Errorf("boom"), http.StatusInternalServerError, "internal"},
	} {
		status, code, _ := classify(tc.err)
		if status != tc.status || code != tc.code {
			t.Errorf("%s: classify = %d %s, want %d %s", tc.name, status, code, tc.status, tc.code)
		}
	}
}
