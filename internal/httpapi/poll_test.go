package httpapi_test

import (
	"testing"
	"time"
)

// waitFor polls cond until it holds, failing the test when it does not within
// timeout. Tests wait on conditions this way, never on a fixed sleep.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
