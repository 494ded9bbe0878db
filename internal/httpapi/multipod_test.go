package httpapi_test

// Several pods share one database: they may start at the same moment against
// an empty one, and each sees what the others did.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokenlease/tokenlease/internal/app"
	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/config"
	"github.com/tokenlease/tokenlease/internal/testdb"
)

// emptyDatabaseURL names a database that does not exist yet on the test
// server (the pods create it); it is dropped when the test ends.
func emptyDatabaseURL(t *testing.T) string {
	t.Helper()
	adminURL := testdb.NewURL(t) // a scratch database to connect through
	var b [6]byte
	rand.Read(b[:])
	name := "tl_test_empty_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// startPodsAtOnce builds n pods on databaseURL at the same moment (app.New
// creates the database and runs the migrations), then serves each of them
// until the test ends.
func startPodsAtOnce(t *testing.T, databaseURL string, n int) []*apptest.Pod {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	apps := make([]*app.App, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		cfg := config.Defaults()
		cfg.DatabaseURL = databaseURL
		cfg.PodName = fmt.Sprintf("%s-pod-%d", t.Name(), i)
		cfg.SweepInterval = config.Duration(200 * time.Millisecond)
		cfg.ShutdownGrace = config.Duration(5 * time.Second)
		cfg.BootstrapAdminKey = apptest.AdminKey
		cfg.MetricsAddr = ""
		wg.Go(func() {
			<-start
			apps[i], errs[i] = app.New(ctx, cfg, app.Options{})
		})
	}
	close(start)
	wg.Wait()
	for _, a := range apps {
		if a != nil {
			t.Cleanup(func() { a.Close(context.Background()) })
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pod %d did not start: %v", i, err)
		}
	}

	pods := make([]*apptest.Pod, n)
	for i, a := range apps {
		if err := a.Start(ctx); err != nil {
			t.Fatalf("pod %d: start: %v", i, err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		serveCtx, stop := context.WithCancel(ctx)
		go func() { served <- a.Serve(serveCtx, ln) }()
		t.Cleanup(func() {
			stop()
			if err := <-served; err != nil && err != http.ErrServerClosed {
				t.Errorf("pod %d: serve: %v", i, err)
			}
		})
		client := apptest.ClientWithKey(apptest.AdminKey)
		client.Timeout = 30 * time.Second
		pods[i] = &apptest.Pod{URL: "http://" + ln.Addr().String(), App: a, Client: client, AdminKey: apptest.AdminKey}
	}
	return pods
}

func TestTwoPodsStartingAtOnceShareOneDatabase(t *testing.T) {
	t.Parallel()
	pods := startPodsAtOnce(t, emptyDatabaseURL(t), 2)
	a, b := pods[0], pods[1]

	t.Run("the migrations ran once", func(t *testing.T) {
		if n := queryInt(t, a, "SELECT count(*) FROM (SELECT version_id FROM goose_db_version GROUP BY version_id HAVING count(*) > 1) d"); n != 0 {
			t.Fatalf("%d goose versions were applied more than once", n)
		}
		if n := queryInt(t, a, "SELECT count(*) FROM goose_db_version WHERE version_id > 0"); n != queryInt(t, a, "SELECT count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0") || n < 1 {
			t.Fatalf("goose_db_version holds %d rows for its versions", n)
		}
		if n := queryInt(t, a, "SELECT count(*) FROM (SELECT line, version FROM river_migration GROUP BY line, version HAVING count(*) > 1) d"); n != 0 {
			t.Fatalf("%d River migrations were applied more than once", n)
		}
	})

	t.Run("both serve", func(t *testing.T) {
		for _, p := range pods {
			wantStatus(t, p.Call(t, "GET", "/healthz", nil), http.StatusOK)
			wantStatus(t, p.Call(t, "GET", "/readyz", nil), http.StatusOK)
		}
	})

	t.Run("a lease made through one pod is seen and honoured through the other", func(t *testing.T) {
		token := a.Generate(t, 1)[0]
		l := a.Assign(t, map[string]any{"holder": "via-a"})
		if l.Token != token {
			t.Fatalf("assigned %q, generated %q", l.Token, token)
		}
		v := b.Lookup(t, token)
		if v.State != "assigned" || *v.LeaseID != l.LeaseID || *v.Holder != "via-a" {
			t.Fatalf("pod b sees %+v", v)
		}
		wantError(t, b.Call(t, "POST", "/tokens/assign", nil), http.StatusNotFound, "no_free_token")
		wantError(t, b.Call(t, "POST", "/tokens/unblock", map[string]any{"token": token, "lease_id": l.LeaseID + 1}), http.StatusConflict, "lease_mismatch")
		wantStatus(t, b.Call(t, "POST", "/tokens/unblock", map[string]any{"token": token, "lease_id": l.LeaseID}), http.StatusOK)
		if v := a.Lookup(t, token); v.State != "free" {
			t.Fatalf("pod a sees %+v after the unblock through b", v)
		}
		// The audit trail names the pod that made each change.
		byKind := map[string]string{}
		for _, e := range auditOf(t, a, token) {
			byKind[e.Kind] = e.Pod
		}
		if byKind["assigned"] != a.App.Config.PodName || byKind["unblocked"] != b.App.Config.PodName {
			t.Fatalf("audit pods %v, want assigned by %s and unblocked by %s", byKind, a.App.Config.PodName, b.App.Config.PodName)
		}
		l2 := b.Assign(t, nil)
		if l2.LeaseID <= l.LeaseID {
			t.Fatalf("lease ids across pods: %d after %d", l2.LeaseID, l.LeaseID)
		}
		if s := a.Stats(t); s != (apptest.Stats{Free: 0, Assigned: 1, Total: 1}) {
			t.Fatalf("stats through a = %+v", s)
		}
	})
}
