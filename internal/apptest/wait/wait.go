// Package wait holds the test suite's one bounded wait on a condition. It
// imports nothing of the service, so that unit tests inside any package may
// use it; black-box tests use it as apptest.Eventually.
package wait

import (
	"testing"
	"time"
)

// Eventually polls cond until it holds, failing the test when it does not
// within the deadline. Tests wait on conditions this way, never on a fixed
// sleep; deadlines are generous (seconds), since the machine may be loaded.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
