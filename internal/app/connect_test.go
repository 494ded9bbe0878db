package app_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/app"
	"github.com/tokenlease/tokenlease/internal/config"
	"github.com/tokenlease/tokenlease/internal/testdb"
)

// freeAddr returns a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// proxyLater starts forwarding addr to target once ready is closed; until
// then connections to addr are refused, as when PostgreSQL is not up yet.
func proxyLater(t *testing.T, addr, target string, ready <-chan struct{}) {
	t.Helper()
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() { close(done); wg.Wait() })
	wg.Go(func() {
		select {
		case <-ready:
		case <-done:
			return
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("proxy: listen on %s: %v", addr, err)
			return
		}
		go func() { <-done; ln.Close() }()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { forward(c, target, done) })
		}
	})
}

func forward(c net.Conn, target string, done <-chan struct{}) {
	defer c.Close()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	finished := make(chan struct{}, 2)
	go func() { io.Copy(up, c); finished <- struct{}{} }()
	go func() { io.Copy(c, up); finished <- struct{}{} }()
	select {
	case <-finished:
	case <-done:
	}
}

// viaAddr points databaseURL at addr instead of its own host and port.
func viaAddr(t *testing.T, databaseURL, addr string) (rewritten, target string) {
	t.Helper()
	u, err := url.Parse(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	target = u.Host
	u.Host = addr
	return u.String(), target
}

func TestStartWaitsForTheDatabaseToComeUp(t *testing.T) {
	addr := freeAddr(t)
	databaseURL, target := viaAddr(t, testdb.NewURL(t), addr)
	ready := make(chan struct{})
	proxyLater(t, addr, target, ready)

	cfg := config.Defaults()
	cfg.DatabaseURL = databaseURL
	cfg.DBConnectTimeout = config.Duration(30 * time.Second)
	// PostgreSQL "appears" once the pod has been refused at least once.
	refused := time.AfterFunc(time.Second, func() { close(ready) })
	defer refused.Stop()

	start := time.Now()
	a, err := app.New(context.Background(), cfg, app.Options{DisableJobs: true, DisableEvents: true})
	if err != nil {
		t.Fatalf("the pod gave up although the database came up after a second: %v", err)
	}
	defer a.Close(context.Background())
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("started after %s, before the database was reachable", waited)
	}
	if err := a.Pool.Ping(context.Background()); err != nil {
		t.Fatalf("pool after start: %v", err)
	}
}

func TestStartGivesUpAfterDBConnectTimeout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		want    string
	}{
		{"zero fails at once", 0, "connect"},
		{"a timeout retries, then names the setting", 500 * time.Millisecond, "DB_CONNECT_TIMEOUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Defaults()
			cfg.DatabaseURL = "postgres://postgres@" + freeAddr(t) + "/tokens?sslmode=disable"
			cfg.DBConnectTimeout = config.Duration(tc.timeout)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			a, err := app.New(ctx, cfg, app.Options{DisableJobs: true, DisableEvents: true})
			if err == nil {
				a.Close(context.Background())
				t.Fatal("a pod started with no database")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %s", err, tc.want)
			}
			if ctx.Err() != nil {
				t.Errorf("start-up outlived the 30 s test deadline instead of giving up after %s", tc.timeout)
			}
		})
	}
}

// Waiting cannot cure a refused login: the pod must not retry it for the
// whole DB_CONNECT_TIMEOUT.
func TestStartDoesNotRetryWhatWaitingCannotCure(t *testing.T) {
	u, err := url.Parse(testdb.NewURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User("no_such_role_tokenlease")
	cfg := config.Defaults()
	cfg.DatabaseURL = u.String()
	cfg.DBConnectTimeout = config.Duration(10 * time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = app.New(ctx, cfg, app.Options{DisableJobs: true, DisableEvents: true})
	if err == nil {
		t.Fatal("a pod started with a role that does not exist")
	}
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		t.Fatalf("a refused login was retried until the test's deadline: %v", err)
	}
}
