// Package faults holds the fault tests of the service and nothing else: real
// pods (internal/apptest) against a database the test breaks on purpose, a
// private cluster it restarts (internal/testpg), a TCP proxy it slows and
// cuts (internal/testproxy), PgBouncer in transaction pooling mode in front.
// Each test checks what clients see during the fault (503 unavailable with
// Retry-After, never 500, never a hang) and after it (every pod serves again
// within seconds, nothing lost, no token held twice).
package faults
