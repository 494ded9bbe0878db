package tokens

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenlease/tokenlease/db"
)

func batchingOff(s *Settings) { s.Batching = false }

// Every write counts on its own backend's counter row (migration 00030): a
// transaction that holds its claim and its counter row open never makes
// another claim or release wait. With 16 shared slots drawn at random, one
// of the 32 assigns below would draw the open transaction's slot 87% of the
// time and wait for it (here: until the deadlock guard's deadline).
func TestCounterRowNeverMakesAWriteWait(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, batchingOff)
	s := bundle.Svc
	if _, err := s.Generate(ctx, "", 40); err != nil {
		t.Fatal(err)
	}
	ref, err := s.resolve(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := bundle.Conns.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // the test's end
	if _, err := db.New(tx).ClaimRandomFree(ctx, db.ClaimRandomFreeParams{
		PoolID: ref.id, Probe: 0.5, LeaseTtlMs: 60_000, Pod: "open-tx",
	}); err != nil {
		t.Fatal(err)
	}

	// A deadlock guard, not a timing: nothing here may wait for the open
	// transaction at all.
	guard, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := s.Assign(guard, AssignRequest{Holder: fmt.Sprint("w", i)})
			if err == nil {
				err = s.Unblock(guard, "", l.Token, &l.LeaseID)
			}
			if err != nil {
				errs <- fmt.Errorf("cycle %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Stats(ctx, ""); err != nil || st.Total != 40 || st.Assigned != 0 {
		t.Fatalf("stats = %+v, %v; want 40 tokens, none assigned (the open claim rolled back)", st, err)
	}
}

// The sweep folds the counter rows of exited backends into the sweeps' row:
// stats stay exact across the fold, the rows of live backends stay, and a
// backend whose row was folded makes a new one at its next write.
func TestFoldCounterRowsKeepsStatsExact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, batchingOff)
	a := bundle.Svc
	if _, err := a.Generate(ctx, "", 20); err != nil {
		t.Fatal(err)
	}
	// Pod b on connections of its own, which it then loses.
	bConns, err := pgxpool.New(ctx, bundle.Conns.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer bConns.Close()
	b := NewService(bConns, a.settings, nil)
	defer b.Close()
	var leases []Lease
	for range 5 {
		l, err := b.Assign(ctx, AssignRequest{})
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, l)
	}
	for _, l := range leases[:2] {
		if err := b.Unblock(ctx, "", l.Token, &l.LeaseID); err != nil {
			t.Fatal(err)
		}
	}
	// Pod a holds a lease too, on its own backend's row.
	if _, err := a.Assign(ctx, AssignRequest{}); err != nil {
		t.Fatal(err)
	}
	want := Stats{Free: 16, Assigned: 4, Total: 20}
	stats := func(when string) {
		t.Helper()
		if st, err := a.Stats(ctx, ""); err != nil || st != want {
			t.Fatalf("stats %s = %+v, %v; want %+v", when, st, err, want)
		}
	}
	stats("before the fold")

	// b's backends exit (pg_terminate_backend waits up to 10 s for each).
	var bRows int
	if err := bundle.Conns.QueryRow(ctx, `
		SELECT count(*) FROM token_counters
		WHERE slot < 0 AND -slot IN (SELECT pid FROM pg_stat_activity)`).Scan(&bRows); err != nil {
		t.Fatal(err)
	}
	if bRows < 2 {
		t.Fatalf("%d counter rows of live backends, want at least a's and b's", bRows)
	}
	bPIDs := map[int32]bool{}
	for _, c := range bConns.AcquireAllIdle(ctx) {
		bPIDs[int32(c.Conn().PgConn().PID())] = true
		c.Release()
	}
	var terminated int
	for pid := range bPIDs {
		var ok bool
		if err := bundle.Conns.QueryRow(ctx, "SELECT pg_terminate_backend($1, 10000)", pid).Scan(&ok); err != nil || !ok {
			t.Fatalf("terminate backend %d: %v, %v", pid, ok, err)
		}
		terminated++
	}
	bConns.Reset() // its connections are dead
	folded, err := a.FoldCounterRows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if folded < 1 {
		t.Fatalf("folded %d rows after %d backends exited, want at least 1", folded, terminated)
	}
	stats("after the fold")
	var gone int
	if err := bundle.Conns.QueryRow(ctx, `
		SELECT count(*) FROM token_counters WHERE slot < 0 AND -slot = ANY($1::int[])`,
		keys(bPIDs)).Scan(&gone); err != nil {
		t.Fatal(err)
	}
	if gone != 0 {
		t.Fatalf("%d counter rows of exited backends left after the fold", gone)
	}
	// Folding again finds nothing of theirs; b reconnects, writes, new rows.
	if err := b.Unblock(ctx, "", leases[2].Token, &leases[2].LeaseID); err != nil {
		t.Fatal(err)
	}
	want = Stats{Free: 17, Assigned: 3, Total: 20}
	stats("after a write on a new backend")
	if _, err := a.FoldCounterRows(ctx); err != nil {
		t.Fatal(err)
	}
	stats("after a second fold")
}

func keys(m map[int32]bool) []int32 {
	out := make([]int32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
