package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/client"
)

// TestRetries: calls safe to repeat are retried on 429/503 honouring
// Retry-After; the others are sent exactly once.
func TestRetries(t *testing.T) {
	var calls atomic.Int32
	srv := newStubServer(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"error":{"code":"rate_limited","message":"slow down"}}`))
			return
		}
		w.Write([]byte(`{"free":1,"assigned":0,"total":1}`))
	})
	c, err := client.New(client.Options{BaseURLs: []string{srv}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	st, err := c.Stats(testContext(t, 10*time.Second), "")
	if err != nil || st.Total != 1 || calls.Load() != 2 {
		t.Fatalf("Stats after a 429: %+v %v, %d calls", st, err, calls.Load())
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("retried after %s, before Retry-After's 1s", waited)
	}

	calls.Store(0)
	busy := newStubServer(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":{"code":"unavailable","message":"shutting down"}}`))
	})
	c, _ = client.New(client.Options{BaseURLs: []string{busy}, MaxAttempts: 3})
	ctx := testContext(t, 10*time.Second)
	for name, f := range map[string]func() error{
		"assign":           func() error { _, err := c.Assign(ctx, "", client.AssignOptions{}); return err },
		"generate":         func() error { _, err := c.Generate(ctx, "", 1); return err },
		"import":           func() error { _, err := c.Import(ctx, "", []string{"x"}); return err },
		"delete":           func() error { return c.Delete(ctx, "", "x") },
		"unblock unfenced": func() error { return c.Unblock(ctx, "", "x", 0) },
		"delete pool":      func() error { return c.DeletePool(ctx, "p") },
		"create key":       func() error { _, err := c.CreateKey(ctx, client.KeyRequest{Name: "k", Role: "client"}); return err },
	} {
		calls.Store(0)
		if err := f(); !errors.Is(err, client.ErrUnavailable) || calls.Load() != 1 {
			t.Errorf("%s: %v after %d calls, want unavailable after 1", name, err, calls.Load())
		}
	}
	for name, f := range map[string]func() error{
		"get":            func() error { _, err := c.Get(ctx, "", "x"); return err },
		"keep-alive":     func() error { _, err := c.KeepAlive(ctx, "", "x", 0); return err },
		"unblock fenced": func() error { return c.Unblock(ctx, "", "x", 7) },
		"put pool":       func() error { _, _, err := c.PutPool(ctx, "p", client.PoolSettings{}); return err },
		"list keys":      func() error { _, err := c.ListKeys(ctx); return err },
	} {
		calls.Store(0)
		if err := f(); !errors.Is(err, client.ErrUnavailable) || calls.Load() != 3 {
			t.Errorf("%s: %v after %d calls, want unavailable after 3", name, err, calls.Load())
		}
	}
}

// TestFailoverOnRefusedConnection: even a call that is never retried goes
// to the next base URL when the first refuses the connection (it never
// left), and the client then sticks to the URL that answered.
func TestFailoverOnRefusedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	var calls atomic.Int32
	live := newStubServer(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"tokens":["t1"]}`))
	})
	c, _ := client.New(client.Options{BaseURLs: []string{dead, live}})
	for range 2 {
		if got, err := c.Generate(testContext(t, 10*time.Second), "", 1); err != nil || len(got) != 1 {
			t.Fatalf("Generate: %v %v", got, err)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("%d calls reached the live server, want 2", calls.Load())
	}
}

// TestCredentials: the API key, or the token source's JWT, is sent as a
// Bearer credential; 401 and 403 map to their sentinels.
func TestCredentials(t *testing.T) {
	srv := newStubServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "Bearer tl_good", "Bearer jwt-1":
			w.Write([]byte(`{"free":0,"assigned":0,"total":0}`))
		case "Bearer tl_reader":
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error":{"code":"forbidden","message":"role reader may not"}}`))
		default:
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":{"code":"unauthenticated","message":"no credential"}}`))
		}
	})
	ctx := testContext(t, 10*time.Second)
	for _, tc := range []struct {
		opts client.Options
		want error
	}{
		{client.Options{APIKey: "tl_good"}, nil},
		{client.Options{TokenSource: func(context.Context) (string, error) { return "jwt-1", nil }}, nil},
		{client.Options{APIKey: "tl_reader"}, client.ErrForbidden},
		{client.Options{}, client.ErrUnauthenticated},
	} {
		tc.opts.BaseURLs = []string{srv}
		c, _ := client.New(tc.opts)
		if _, err := c.Stats(ctx, ""); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%+v: got %v, want %v", tc.opts.APIKey, err, tc.want)
		}
	}
}
