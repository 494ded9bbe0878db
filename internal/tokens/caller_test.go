package tokens_test

// The caller: every lease and audit row records its actor; a caller limited
// to its own leases cannot unblock, keep alive or look up another actor's
// live lease (decided in the statement); every change bumps the token's
// version, and the audit rows carry consecutive versions.

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/tokenlease/tokenlease/internal/tokens"
)

func TestCallerActorsAndOwnLeases(t *testing.T) {
	t.Parallel()
	for _, batching := range []bool{true, false} {
		t.Run(map[bool]string{true: "batching", false: "one statement each"}[batching], func(t *testing.T) {
			t.Parallel()
			b := tokens.Setup(t, func(s *tokens.Settings) { s.Batching = batching })
			svc, conns := b.Svc, b.Conns
			ctx := context.Background()
			if _, err := svc.Generate(tokens.WithCaller(ctx, tokens.Caller{Actor: "ops"}), "", 1); err != nil {
				t.Fatal(err)
			}
			ctxA := tokens.WithCaller(ctx, tokens.Caller{Actor: "key-a", OwnLeasesOnly: true})
			ctxB := tokens.WithCaller(ctx, tokens.Caller{Actor: "key-b", OwnLeasesOnly: true})
			ctxOps := tokens.WithCaller(ctx, tokens.Caller{Actor: "ops"})

			l, err := svc.Assign(ctxA, tokens.AssignRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var leaseActor string
			if err := conns.QueryRow(ctx, "SELECT lease_actor FROM tokens WHERE value = $1", l.Token).Scan(&leaseActor); err != nil || leaseActor != "key-a" {
				t.Fatalf("lease_actor = %q (%v), want key-a", leaseActor, err)
			}

			// Another client: forbidden, with or without the lease id, and
			// nothing changes.
			for name, err := range map[string]error{
				"unblock":               svc.Unblock(ctxB, "", l.Token, nil),
				"unblock with lease":    svc.Unblock(ctxB, "", l.Token, &l.LeaseID),
				"keep-alive":            func() error { _, err := svc.KeepAlive(ctxB, "", l.Token, nil); return err }(),
				"keep-alive with lease": func() error { _, err := svc.KeepAlive(ctxB, "", l.Token, &l.LeaseID); return err }(),
				"lookup":                func() error { _, err := svc.Get(ctxB, "", l.Token); return err }(),
			} {
				if !errors.Is(err, tokens.ErrForbidden) {
					t.Errorf("%s of another client's lease: %v, want ErrForbidden", name, err)
				}
			}
			// Its own: allowed.
			if _, err := svc.KeepAlive(ctxA, "", l.Token, &l.LeaseID); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Get(ctxA, "", l.Token); err != nil {
				t.Fatal(err)
			}
			// An operator (not limited) force-releases it.
			if err := svc.Unblock(ctxOps, "", l.Token, nil); err != nil {
				t.Fatal(err)
			}
			// A free token is not the client's either: it may look up only
			// what it holds.
			if _, err := svc.Get(ctxA, "", l.Token); !errors.Is(err, tokens.ErrForbidden) {
				t.Errorf("lookup of a free token by a client: %v, want ErrForbidden", err)
			}

			type row struct {
				Kind    string
				Version *int64
				Actor   *string
			}
			rows, err := conns.Query(ctx, "SELECT kind, version, actor FROM token_events WHERE token = $1 ORDER BY version", l.Token)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.Kind, &r.Version, &r.Actor); err != nil {
					t.Fatal(err)
				}
				actor := "-"
				if r.Actor != nil {
					actor = *r.Actor
				}
				got = append(got, r.Kind+":"+actor+":"+itoa(r.Version))
			}
			want := []string{"generated:ops:1", "assigned:key-a:2", "kept_alive:key-a:3", "unblocked:ops:4"}
			if !slices.Equal(got, want) {
				t.Fatalf("audit trail %v, want %v", got, want)
			}
		})
	}
}

func itoa(v *int64) string {
	if v == nil {
		return "nil"
	}
	return strconv.FormatInt(*v, 10)
}

func TestLapsedLeaseTakenOverBumpsVersionTwice(t *testing.T) {
	t.Parallel()
	b := tokens.Setup(t)
	svc, conns := b.Svc, b.Conns
	ctx := context.Background()
	if _, err := svc.Generate(ctx, "", 1); err != nil {
		t.Fatal(err)
	}
	l, err := svc.Assign(ctx, tokens.AssignRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// The lease lapses (moved into the past, as time would).
	if _, err := conns.Exec(ctx, "UPDATE tokens SET lease_expires_at = now() - interval '1 second'"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Assign(ctx, tokens.AssignRequest{}); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var versions []int64
	rows, err := conns.Query(ctx, "SELECT kind, version FROM token_events WHERE token = $1 ORDER BY id", l.Token)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		kinds, versions = append(kinds, k), append(versions, v)
	}
	if !slices.Equal(kinds, []string{"generated", "assigned", "released", "assigned"}) || !slices.Equal(versions, []int64{1, 2, 3, 4}) {
		t.Fatalf("audit: %v with versions %v, want generated, assigned, released, assigned with 1..4", kinds, versions)
	}
	var version int64
	if err := conns.QueryRow(ctx, "SELECT version FROM tokens").Scan(&version); err != nil || version != 4 {
		t.Fatalf("tokens.version = %d (%v), want 4", version, err)
	}
}
