package faults_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/testpg"
)

// PostgreSQL is restarted under load, once cleanly (every session ends with
// 57P01) and once as a crash (immediate: recovery from the WAL, 57P03 while
// it starts). During each outage clients get 503 unavailable with
// Retry-After, never 500 and never a hang; afterwards every pod serves again
// within 5 s without a restart of its own; no token is lost or held twice.
func TestDatabaseRestartMidLoad(t *testing.T) {
	t.Parallel()
	cluster := testpg.Start(t)
	url := cluster.URL("tokens")
	podA := apptest.NewPodOn(t, url)
	podB := apptest.NewPodOn(t, url)
	tokens := podA.Generate(t, 12)

	ld := newLoad(podA, podB)
	ctx, stop := context.WithCancel(context.Background())
	wait := ld.run(ctx, 4)
	for _, mode := range []testpg.StopMode{testpg.Fast, testpg.Immediate} {
		time.Sleep(700 * time.Millisecond) // load before the fault (not a sync)
		cluster.Stop(mode)
		before := ld.count("200 ")
		time.Sleep(time.Second) // the outage lasts a second
		// Only answers already on their way when the server went may be 200.
		if served := ld.count("200 ") - before; served > 8 {
			t.Errorf("%d answers of 200 while the database was down", served)
		}
		cluster.Start()
		for _, pod := range []*apptest.Pod{podA, podB} {
			t.Logf("after the %s restart, %s serves again in %v", mode, pod.URL, servesAgain(t, pod, 5*time.Second).Round(time.Millisecond))
		}
	}
	time.Sleep(700 * time.Millisecond) // load after the faults
	stop()
	wait()
	ld.check(t)
	if ld.count("503 unavailable") == 0 {
		t.Error("no request met the outage: the test tested nothing")
	}
	// The long-poll answers 503 too while the database is down.
	cluster.Stop(testpg.Fast)
	a := ld.call(podB, "POST", "/tokens/assign?wait=2s", nil)
	if a.status != http.StatusServiceUnavailable || a.code != "unavailable" || a.retryAfter == "" {
		t.Errorf("assign?wait= with the database down: %d %q Retry-After %q", a.status, a.code, a.retryAfter)
	}
	cluster.Start()
	servesAgain(t, podA, 5*time.Second)
	servesAgain(t, podB, 5*time.Second)
	nothingLost(t, tokens, podA, podB)
}
