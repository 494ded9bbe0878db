package tokens_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenlease/tokenlease/internal/tokens"
)

// smallBatches keeps batches small, so that a test's requests make several.
func smallBatches(s *tokens.Settings) { s.BatchMax = 8 }

// Two pods with batching on, many concurrent assign -> unblock cycles on a
// small pool: no token is ever held by two callers, every caller's unblock
// of its own lease succeeds, and counters and audit rows add up.
func TestBatchedCyclesNeverShareAToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := tokens.Setup(t, smallBatches)
	pool := bundle.Conns
	pods := []*tokens.Service{bundle.Svc, bundle.Pod(t, "pod-b", smallBatches)}
	const poolSize, workers, cycles = 40, 36, 40
	if _, err := pods[0].Generate(ctx, "", poolSize); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	holder := map[string]int{}   // token -> worker holding it
	leaseIDs := map[int64]bool{} // every lease id handed out
	var failures []string
	fail := func(format string, args ...any) {
		mu.Lock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc := pods[w%len(pods)]
			for range cycles {
				l, err := svc.Assign(ctx, tokens.AssignRequest{Holder: fmt.Sprint("w", w)})
				if err != nil {
					fail("worker %d: assign: %v", w, err)
					return
				}
				if l.Holder != fmt.Sprint("w", w) {
					fail("worker %d got the lease of holder %q", w, l.Holder)
				}
				mu.Lock()
				if other, held := holder[l.Token]; held {
					failures = append(failures, fmt.Sprintf("token %s given to worker %d while worker %d holds it", l.Token, w, other))
				}
				if leaseIDs[l.LeaseID] {
					failures = append(failures, fmt.Sprintf("lease id %d handed out twice", l.LeaseID))
				}
				holder[l.Token] = w
				leaseIDs[l.LeaseID] = true
				mu.Unlock()
				runtime.Gosched() // hold the token a moment
				mu.Lock()
				delete(holder, l.Token)
				mu.Unlock()
				if err := svc.Unblock(ctx, "", l.Token, &l.LeaseID); err != nil {
					fail("worker %d: unblock of its own lease %d on %s: %v", w, l.LeaseID, l.Token, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	if t.Failed() {
		return
	}
	st, err := pods[1].Stats(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if st.Assigned != 0 || st.Total != poolSize {
		t.Errorf("stats after every lease was released: %+v", st)
	}
	counts := eventCounts(t, pool)
	if n := workers * cycles; counts["assigned"] != n || counts["unblocked"] != n {
		t.Errorf("audit rows %v, want %d assigned and %d unblocked", counts, n, n)
	}
	var leased int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM tokens WHERE lease_id IS NOT NULL").Scan(&leased); err != nil {
		t.Fatal(err)
	}
	if leased != 0 {
		t.Errorf("%d tokens still leased", leased)
	}
}

// More concurrent assigns than free tokens: each token goes to exactly one
// caller, the rest get no_free_token.
func TestBatchedAssignsDrainThePool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := tokens.Setup(t, smallBatches).Svc
	const poolSize, callers = 25, 60
	if _, err := svc.Generate(ctx, "", poolSize); err != nil {
		t.Fatal(err)
	}
	type out struct {
		l   tokens.Lease
		err error
	}
	results := make(chan out, callers)
	start := make(chan struct{})
	for range callers {
		go func() {
			<-start
			l, err := svc.Assign(ctx, tokens.AssignRequest{})
			results <- out{l, err}
		}()
	}
	close(start)
	got := map[string]bool{}
	empty := 0
	for range callers {
		r := <-results
		switch {
		case r.err == nil:
			if got[r.l.Token] {
				t.Errorf("token %s assigned twice", r.l.Token)
			}
			got[r.l.Token] = true
		case errors.Is(r.err, tokens.ErrNoFreeToken):
			empty++
		default:
			t.Errorf("assign: %v", r.err)
		}
	}
	if len(got) != poolSize || empty != callers-poolSize {
		t.Fatalf("%d assigned, %d no_free_token; want %d and %d", len(got), empty, poolSize, callers-poolSize)
	}
}

// Concurrent unblocks of one token: exactly one releases it, the others get
// not_assigned, as they would one after the other.
func TestBatchedUnblocksOfOneToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := tokens.Setup(t, smallBatches)
	pool, svc := bundle.Conns, bundle.Svc
	if _, err := svc.Generate(ctx, "", 3); err != nil {
		t.Fatal(err)
	}
	l, err := svc.Assign(ctx, tokens.AssignRequest{})
	if err != nil {
		t.Fatal(err)
	}
	const callers = 12
	errs := make(chan error, callers)
	start := make(chan struct{})
	for i := range callers {
		go func() {
			<-start
			if i%2 == 0 {
				errs <- svc.Unblock(ctx, "", l.Token, &l.LeaseID)
			} else {
				errs <- svc.Unblock(ctx, "", l.Token, nil)
			}
		}()
	}
	close(start)
	released := 0
	for range callers {
		switch err := <-errs; {
		case err == nil:
			released++
		case errors.Is(err, tokens.ErrNotAssigned):
		default:
			t.Errorf("unblock: %v", err)
		}
	}
	if released != 1 {
		t.Fatalf("%d unblocks released the lease, want exactly 1", released)
	}
	if n := eventCounts(t, pool)["unblocked"]; n != 1 {
		t.Fatalf("%d unblocked audit rows, want 1", n)
	}
}

func eventCounts(t *testing.T, pool *pgxpool.Pool) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT kind, count(*) FROM token_events GROUP BY kind")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = n
	}
	return out
}
