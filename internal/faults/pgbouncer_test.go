package faults_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/apptest/wait"
	"github.com/tokenlease/tokenlease/internal/config"
	"github.com/tokenlease/tokenlease/internal/testpg"
)

// pooledExecMode is the pgx query mode for a DATABASE_URL that leads to
// PgBouncer in transaction pooling mode (docs/DECISIONS.md): statements
// are described once per connection and then sent unnamed, so that no
// prepared statement has to outlive the transaction in which it was made.
const pooledExecMode = "default_query_exec_mode=cache_describe"

// The API runs through PgBouncer in transaction pooling mode: the hot path,
// the pool operations, the long-poll across pods and River's sweeps all
// work, while the events layer's LISTEN and reader connections go directly
// to PostgreSQL (LISTEN_DATABASE_URL).
func TestAPIThroughPgBouncer(t *testing.T) {
	t.Parallel()
	cluster := testpg.Start(t)
	bouncer := testpg.StartPgBouncer(t, cluster)
	pooled := bouncer.URL("tokens") + "&" + pooledExecMode
	direct := cluster.SocketURL("tokens")
	withDirect := apptest.WithConfig(func(c *config.Config) { c.ListenDatabaseURL = direct })
	podA := apptest.NewPodOn(t, pooled, withDirect)
	podB := apptest.NewPodOn(t, pooled, withDirect)

	// The hot path under concurrency, so that transactions of many clients
	// share PgBouncer's server connections.
	tokens := podA.Generate(t, 20)
	ld := newLoad(podA, podB)
	ctx, stop := context.WithCancel(context.Background())
	waitLoad := ld.run(ctx, 4)
	time.Sleep(1500 * time.Millisecond) // load (not a sync)
	stop()
	waitLoad()
	ld.check(t)
	if n := ld.count("503 unavailable"); n > 0 {
		t.Errorf("%d answers of 503 through a healthy PgBouncer", n)
	}
	if ld.count("200 ") < 20 {
		t.Errorf("only %d requests served through PgBouncer", ld.count("200 "))
	}

	// The other operations.
	for _, step := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"POST", "/tokens/import", map[string]any{"tokens": []string{"imported-1", "imported-2"}}, http.StatusCreated},
		{"POST", "/tokens/keep-alive", map[string]any{"token": "imported-1"}, http.StatusOK},
		{"GET", "/tokens/imported-2", nil, http.StatusOK},
		{"DELETE", "/tokens/imported-2", nil, http.StatusOK},
		{"GET", "/tokens/stats", nil, http.StatusOK},
		{"GET", "/readyz", nil, http.StatusOK},
	} {
		if r := podB.Call(t, step.method, step.path, step.body); r.Status != step.status {
			t.Errorf("%s %s: %d %s", step.method, step.path, r.Status, r.Body)
		}
	}

	// A waiter on pod B is served when pod A frees a token: the doorbell
	// rings through PgBouncer and is heard on B's direct LISTEN connection.
	var held []map[string]any
	for {
		r := podA.Do(t, "POST", "/tokens/assign", nil)
		if r.Status != http.StatusOK {
			break
		}
		held = append(held, r.Map(t))
	}
	var wg sync.WaitGroup
	var waited apptest.Response
	wg.Add(1)
	go func() {
		defer wg.Done()
		waited = podB.Do(t, "POST", "/tokens/assign?wait=20s", nil)
	}()
	wait.Eventually(t, 10*time.Second, "the waiter waits", func() bool { return podB.App.Waiter.Waiting() == 1 })
	freed := time.Now()
	if r := podA.Call(t, "POST", "/tokens/unblock", map[string]any{"token": held[0]["token"]}); r.Status != http.StatusOK {
		t.Fatalf("unblock: %d %s", r.Status, r.Body)
	}
	wg.Wait()
	if waited.Status != http.StatusOK {
		t.Fatalf("waiter: %d %s", waited.Status, waited.Body)
	}
	t.Logf("a waiter on pod B was served %v after the unblock on pod A", time.Since(freed).Round(time.Millisecond))

	// River's sweeps run through PgBouncer too (polling, not LISTENing): a
	// lapsed lease is swept and counted free again.
	if r := podA.Do(t, "POST", "/tokens/unblock", []byte(`{"token":"`+held[1]["token"].(string)+`"}`)); r.Status != http.StatusOK {
		t.Fatalf("unblock: %d %s", r.Status, r.Body)
	}
	lapsing := podA.Do(t, "POST", "/tokens/assign?ttl=200ms", nil)
	if lapsing.Status != http.StatusOK {
		t.Fatalf("assign: %d %s", lapsing.Status, lapsing.Body)
	}
	wait.Eventually(t, 15*time.Second, "the sweep frees the lapsed lease", func() bool {
		var st struct{ Free int64 }
		podB.Do(t, "GET", "/tokens/stats", nil).JSON(t, &st)
		return st.Free == 1
	})

	// The events layer's connections are direct: over the Unix socket, where
	// PgBouncer connects over TCP.
	conn, err := pgx.Connect(context.Background(), cluster.URL("tokens"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var viaSocket, viaTCP int
	err = conn.QueryRow(context.Background(), `
		SELECT count(*) FILTER (WHERE client_addr IS NULL), count(*) FILTER (WHERE client_addr IS NOT NULL)
		FROM pg_stat_activity
		WHERE datname = 'tokens' AND application_name IN ('tokenlease-listen', 'tokenlease-reader')`).Scan(&viaSocket, &viaTCP)
	if err != nil {
		t.Fatal(err)
	}
	if viaSocket != 4 || viaTCP != 0 {
		t.Errorf("events connections: %d direct, %d through TCP; want 4 direct (listen and reader of 2 pods)", viaSocket, viaTCP)
	}
	nothingLost(t, append(tokens, "imported-1"), podA)
}
