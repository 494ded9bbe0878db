package testpg_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokenlease/tokenlease/internal/testpg"
)

func query(t *testing.T, url string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

func TestClusterStopsAndStartsOnItsPort(t *testing.T) {
	t.Parallel()
	c := testpg.Start(t)
	bouncer := testpg.StartPgBouncer(t, c)
	for _, u := range []string{c.URL("postgres"), bouncer.URL("postgres")} {
		if err := query(t, u); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
	}
	c.Stop(testpg.Fast)
	if err := query(t, c.URL("postgres")); err == nil {
		t.Fatal("a stopped cluster answered")
	}
	c.Start()
	c.Restart(testpg.Immediate)
	for _, u := range []string{c.URL("postgres"), bouncer.URL("postgres")} {
		if err := query(t, u); err != nil {
			t.Fatalf("after restart, %s: %v", u, err)
		}
	}
}
