package tokens_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenlease/tokenlease/internal/tokens"
)

// A claim or a lease renewal that waited behind a lock never answers with a
// lease that is already dead (issue 9, item 8): deadlines count from the
// moment the row is written, not from the statement's start. Another
// transaction holds a lock for longer than the lease's 200ms TTL while the
// statement waits; the answer is a lease still ahead of the database's clock
// when it arrives, or a clean refusal.
func TestLeaseIsNeverDeadOnArrival(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ttl := 200 * time.Millisecond
	b := tokens.Setup(t, func(s *tokens.Settings) { s.LeaseTTL, s.Batching = ttl, false })
	pool, svc, url := b.Conns, b.Svc, b.Conns.Config().ConnString()
	if _, err := svc.Generate(ctx, "", 3); err != nil {
		t.Fatal(err)
	}

	t.Run("assign waits behind a lock on the audit table", func(t *testing.T) {
		// One claim first, so that the statement is prepared and the wait
		// falls into its execution, not into its preparation.
		l, err := svc.Assign(ctx, tokens.AssignRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Unblock(ctx, "", l.Token, &l.LeaseID); err != nil {
			t.Fatal(err)
		}
		err = whileLocked(t, url, "LOCK TABLE token_events IN SHARE MODE", "", func() error {
			var err error
			l, err = svc.Assign(ctx, tokens.AssignRequest{})
			return err
		})
		if err != nil {
			t.Fatalf("assign: %v", err)
		}
		wantAhead(t, pool, l.LeaseExpiresAt)
	})

	t.Run("keep-alive waits behind a row lock", func(t *testing.T) {
		l, err := svc.Assign(ctx, tokens.AssignRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var st tokens.TokenState
		err = whileLocked(t, url, "SELECT 1 FROM tokens WHERE value = $1 FOR UPDATE", l.Token, func() error {
			var err error
			st, err = svc.KeepAlive(ctx, "", l.Token, &l.LeaseID)
			return err
		})
		switch {
		case errors.Is(err, tokens.ErrLeaseMismatch):
			// Refused: the lease lapsed while the renewal waited.
		case err != nil:
			t.Fatalf("keep-alive: %v", err)
		case st.LeaseExpiresAt == nil:
			t.Fatalf("keep-alive renewed no lease: %+v", st)
		default:
			wantAhead(t, pool, *st.LeaseExpiresAt)
		}
	})
}

// whileLocked takes a lock in another transaction (lock, with arg unless
// empty), starts op, holds the lock until op waits for it and the database
// clock has moved on by more than a lease's TTL, then commits and returns
// op's error.
func whileLocked(t *testing.T, url, lock, arg string, op func() error) error {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // committed below
	args := []any{}
	if arg != "" {
		args = append(args, arg)
	}
	if _, err := tx.Exec(ctx, lock, args...); err != nil {
		t.Fatal(err)
	}
	var start time.Time
	if err := tx.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&start); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- op() }()
	waitFor(t, 10*time.Second, func() bool {
		var waiting, later bool
		if err := tx.QueryRow(ctx, `
SELECT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()),
       clock_timestamp() > $1::timestamptz + interval '400 milliseconds'`, start).Scan(&waiting, &later); err != nil {
			t.Fatal(err)
		}
		return waiting && later
	})
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the operation did not finish after the lock was released")
		return nil
	}
}

// wantAhead fails unless at lies ahead of the database's clock.
func wantAhead(t *testing.T, pool *pgxpool.Pool, at time.Time) {
	t.Helper()
	var ahead bool
	if err := pool.QueryRow(context.Background(), "SELECT $1::timestamptz > clock_timestamp()", at).Scan(&ahead); err != nil {
		t.Fatal(err)
	}
	if !ahead {
		t.Errorf("the answer's lease_expires_at %s is already past on the database's clock", at.Format(time.RFC3339Nano))
	}
}

func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
