package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/client"
	"github.com/tokenlease/tokenlease/internal/apptest"
)

func newClient(t *testing.T, urls ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{BaseURLs: urls, RequestTimeout: 10 * time.Second, APIKey: apptest.AdminKey})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func errorsIsAll(err error, targets ...error) bool {
	for _, t := range targets {
		if !errors.Is(err, t) {
			return false
		}
	}
	return err != nil
}
