package client_test

import (
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/client"
	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/config"
)

// TestTokenCalls runs every token call of the default pool against a pod
// and checks the answers and the error each refusal maps to.
func TestTokenCalls(t *testing.T) {
	pod := apptest.NewPod(t, apptest.WithConfig(func(c *config.Config) { c.MaxTokens = 6 }))
	c := newClient(t, pod.URL)
	ctx := testContext(t, 60*time.Second)

	gen, err := c.Generate(ctx, "", 2)
	if err != nil || len(gen) != 2 {
		t.Fatalf("Generate: %v %v", gen, err)
	}
	odd := []string{"a/b c?d+e%f", "ключ-1"}
	imp, err := c.Import(ctx, "default", append(odd, gen[0]))
	if err != nil || !slices.Equal(imp.Imported, odd) || !slices.Equal(imp.Existing, gen[:1]) {
		t.Fatalf("Import: %+v %v", imp, err)
	}
	for _, v := range odd { // values that need percent-encoding in paths
		info, err := c.Get(ctx, "", v)
		if err != nil || info.Token != v || info.State != "free" || info.CreatedAt.IsZero() {
			t.Fatalf("Get(%q): %+v %v", v, info, err)
		}
	}
	st, err := c.Stats(ctx, "")
	if err != nil || st != (client.Stats{Free: 4, Total: 4}) {
		t.Fatalf("Stats: %+v %v", st, err)
	}

	a, err := c.Assign(ctx, "", client.AssignOptions{Holder: "worker-1", TTL: time.Minute})
	if err != nil || a.LeaseID <= 0 || a.Holder != "worker-1" || !a.LeaseExpiresAt.After(a.AliveUntil.Add(-10*time.Minute)) {
		t.Fatalf("Assign: %+v %v", a, err)
	}
	info, err := c.Get(ctx, "", a.Token)
	if err != nil || info.State != "assigned" || info.LeaseID != a.LeaseID || info.Holder != "worker-1" {
		t.Fatalf("Get assigned: %+v %v", info, err)
	}
	ka, err := c.KeepAlive(ctx, "", a.Token, a.LeaseID)
	if err != nil || ka.LeaseID != a.LeaseID || ka.LeaseExpiresAt.Before(a.LeaseExpiresAt) {
		t.Fatalf("KeepAlive fenced: %+v %v", ka, err)
	}
	if ka, err = c.KeepAlive(ctx, "", a.Token, 0); err != nil || ka.State != "assigned" {
		t.Fatalf("KeepAlive unfenced: %+v %v", ka, err)
	}

	wantErr := func(name string, err, sentinel error, status int, code string) {
		t.Helper()
		var ae *client.APIError
		if !errors.Is(err, sentinel) || !errors.As(err, &ae) || ae.Status != status || ae.Code != code || ae.Message == "" {
			t.Fatalf("%s: got %v, want %d %s", name, err, status, code)
		}
	}
	_, err = c.KeepAlive(ctx, "", a.Token, a.LeaseID+1000)
	wantErr("KeepAlive stale lease", err, client.ErrLeaseMismatch, 409, "lease_mismatch")
	err = c.Unblock(ctx, "", a.Token, a.LeaseID+1000)
	wantErr("Unblock stale lease", err, client.ErrLeaseMismatch, 409, "lease_mismatch")
	if err := c.Unblock(ctx, "", a.Token, a.LeaseID); err != nil {
		t.Fatalf("Unblock fenced: %v", err)
	}
	err = c.Unblock(ctx, "", a.Token, 0)
	wantErr("Unblock free token", err, client.ErrNotAssigned, 409, "not_assigned")
	b, err := c.Assign(ctx, "", client.AssignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Unblock(ctx, "", b.Token, 0); err != nil {
		t.Fatalf("Unblock unfenced: %v", err)
	}

	_, err = c.Get(ctx, "", "no-such-token")
	wantErr("Get unknown", err, client.ErrNotFound, 404, "not_found")
	_, err = c.Generate(ctx, "", 0)
	wantErr("Generate 0", err, client.ErrInvalidRequest, 400, "invalid_request")
	_, err = c.Generate(ctx, "", 3)
	wantErr("Generate past MAX_TOKENS", err, client.ErrPoolFull, 409, "pool_full")
	_, err = c.Assign(ctx, "", client.AssignOptions{TTL: 2 * time.Hour})
	wantErr("Assign ttl too long", err, client.ErrInvalidRequest, 400, "invalid_request")

	if err := c.Delete(ctx, "", odd[0]); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	err = c.Delete(ctx, "", odd[0])
	wantErr("Delete twice", err, client.ErrNotFound, 404, "not_found")

	var held []string
	for {
		a, err := c.Assign(ctx, "", client.AssignOptions{})
		if errors.Is(err, client.ErrNoFreeToken) {
			wantErr("Assign none free", err, client.ErrNoFreeToken, 404, "no_free_token")
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, a.Token)
	}
	if len(held) != 3 {
		t.Fatalf("assigned %d tokens before no_free_token, want 3", len(held))
	}
	// A long-poll assign is served by a token freed while it waits.
	got := make(chan error, 1)
	go func() {
		_, err := c.Assign(ctx, "", client.AssignOptions{Wait: 20 * time.Second})
		got <- err
	}()
	time.Sleep(100 * time.Millisecond) // not a sync: the assign succeeds whether or not it waited
	if err := c.Unblock(ctx, "", held[0], 0); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("Assign with wait: %v", err)
	}
}

// TestErrorsWithoutAnAPIBody: an answer that is not the API's (a proxy's
// page) is classified by its status; the request id travels along.
func TestErrorsWithoutAnAPIBody(t *testing.T) {
	srv := newStubServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-ID", "req-42")
		w.Header().Set("Retry-After", "0")
		http.Error(w, "<html>busy</html>", http.StatusServiceUnavailable)
	})
	c, err := client.New(client.Options{BaseURLs: []string{srv}, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Stats(testContext(t, 10*time.Second), "")
	var ae *client.APIError
	if !errors.Is(err, client.ErrUnavailable) || !errors.As(err, &ae) || ae.RequestID != "req-42" || ae.Status != 503 {
		t.Fatalf("got %v", err)
	}
}
