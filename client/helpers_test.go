package client_test

import (
	"context"
	"errors"
	"slices"
	"sync"
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

func errorsIsAll(err error, targets ...error) bool {
	for _, t := range targets {
		if !errors.Is(err, t) {
			return false
		}
	}
	return err != nil
}

// collect ranges over c.Events(ctx, filter) in the background: received
// returns what has arrived so far, done yields the iteration's end (nil, or
// the error it ended with).
func collect(ctx context.Context, c *client.Client, filter client.EventsFilter) (received func() []client.Event, done <-chan error) {
	var mu sync.Mutex
	var got []client.Event
	end := make(chan error, 1)
	go func() {
		for ev, err := range c.Events(ctx, filter) {
			if err != nil {
				end <- err
				return
			}
			mu.Lock()
			got = append(got, ev)
			mu.Unlock()
		}
		end <- nil
	}()
	return func() []client.Event { mu.Lock(); defer mu.Unlock(); return slices.Clone(got) }, end
}
