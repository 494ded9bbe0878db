package events_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/app"
	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/config"
	"github.com/tokenlease/tokenlease/internal/testdb"
)

// startPod runs a pod the way tokend does, with a stop the test controls;
// the returned channel closes once Serve and Close have returned.
func startPod(t *testing.T, url string) (*apptest.Pod, context.CancelFunc, <-chan struct{}) {
	t.Helper()
	cfg := config.Defaults()
	cfg.DatabaseURL = url
	cfg.PodName = "shutdown-test"
	cfg.ShutdownGrace = config.Duration(30 * time.Second)
	cfg.BootstrapAdminKey = apptest.AdminKey
	cfg.MetricsAddr = ""
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, app.Options{DisableJobs: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		if err := a.Serve(ctx, ln); err != nil && err != http.ErrServerClosed {
			t.Errorf("serve: %v", err)
		}
		a.Close(context.Background())
	}()
	t.Cleanup(func() { cancel(); <-stopped })
	return &apptest.Pod{URL: "http://" + ln.Addr().String(), App: a, Client: apptest.ClientWithKey(apptest.AdminKey), AdminKey: apptest.AdminKey}, cancel, stopped
}

// At shutdown open streams end and waiting assigns answer 503 at once: the
// drain does not wait for them (its grace here is 30s).
func TestShutdownEndsStreamsAndWaiters(t *testing.T) {
	t.Parallel()
	pod, stop, stopped := startPod(t, testdb.NewURL(t))
	s := openStream(t, pod, "/tokens/events", "")
	res := startWaiter(context.Background(), pod, "60s")
	waiting(t, pod, 1)

	start := time.Now()
	stop()
	r := receive(t, res, 20*time.Second)
	if r.status != http.StatusServiceUnavailable || r.code != "unavailable" {
		t.Fatalf("waiter at shutdown: %d %q", r.status, r.code)
	}
	select {
	case <-s.ended:
	case <-time.After(20 * time.Second):
		t.Fatal("the stream did not end at shutdown")
	}
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("the pod did not stop")
	}
	t.Logf("shutdown with an open stream and a waiter took %s", time.Since(start))
	if time.Since(start) > 10*time.Second {
		t.Errorf("shutdown waited for the drain grace")
	}
}
