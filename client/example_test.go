package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/tokenlease/tokenlease/client"
)

// Errors are matched with errors.Is; the *APIError carries the details.
// (A stand-in server answers here, so that the example runs anywhere.)
func Example_errors() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-ID", "r-1")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"no_free_token","message":"every token is assigned"}}`)
	}))
	defer srv.Close()

	c, _ := client.New(client.Options{BaseURLs: []string{srv.URL}})
	_, err := c.Assign(context.Background(), "", client.AssignOptions{Holder: "worker-7"})
	if errors.Is(err, client.ErrNoFreeToken) {
		var ae *client.APIError
		errors.As(err, &ae)
		fmt.Println(ae.Status, ae.Code, ae.RequestID)
	}
	// Output: 404 no_free_token r-1
}

// A worker holds a token while it works, and stops as soon as the lease is
// lost.
func ExampleClient_Acquire() {
	c, err := client.New(client.Options{
		BaseURLs: []string{"http://tokenlease-a:8080", "http://tokenlease-b:8080"},
		APIKey:   os.Getenv("TOKENLEASE_KEY"),
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	lease, err := c.Acquire(ctx, "proxies-eu", client.AcquireOptions{
		Holder: "worker-7", TTL: 30 * time.Second, Wait: 10 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer lease.Release(ctx)

	// Work under lease.Context(): it is cancelled before the server could
	// hand the token to anyone else. Pass LeaseID() downstream for fencing.
	if err := doWork(lease.Context(), lease.Token(), lease.LeaseID()); err != nil {
		log.Printf("work stopped: %v (lease: %v)", err, lease.Err())
	}
}

func doWork(ctx context.Context, token string, fence int64) error {
	<-ctx.Done()
	return ctx.Err()
}

// Follow the change stream; it resumes by itself across disconnects.
func ExampleClient_Events() {
	c, _ := client.New(client.Options{BaseURLs: []string{"http://127.0.0.1:8080"}})
	for ev, err := range c.Events(context.Background(), client.EventsFilter{Kinds: []string{"assigned", "released"}}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.ID, ev.Kind, ev.Token, ev.Holder)
	}
}

// Tokens are generated, or imported when you own the values.
func ExampleClient_Import() {
	c, _ := client.New(client.Options{BaseURLs: []string{"http://127.0.0.1:8080"}, APIKey: os.Getenv("TOKENLEASE_KEY")})
	res, err := c.Import(context.Background(), "licences", []string{"LIC-0001", "LIC-0002"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(res.Imported), "imported,", len(res.Existing), "already there")
}
