package tokens_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/tokens"
)

// Concurrent keep-alives through the batcher each get their own answer, as
// a lone keep-alive would: a free token is kept alive without a lease, a
// held token's lease is renewed with its id, a stale id is lease_mismatch and
// changes nothing, an unknown token is not_found. Audit rows match.
func TestBatchedKeepAlivesAnswerEachRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := tokens.Setup(t, smallBatches)
	pool, svc := bundle.Conns, bundle.Svc
	const n = 48
	values, err := svc.Generate(ctx, "", n)
	if err != nil {
		t.Fatal(err)
	}
	leases := map[string]tokens.Lease{}
	for range n / 2 {
		l, err := svc.Assign(ctx, tokens.AssignRequest{Holder: "h", TTL: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		leases[l.Token] = l
	}

	type outcome struct {
		want error
		st   tokens.TokenState
		err  error
	}
	results := make([]outcome, 0, 2*n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	send := func(token string, leaseID *int64, want error) {
		wg.Go(func() {
			st, err := svc.KeepAlive(ctx, "", token, leaseID)
			mu.Lock()
			results = append(results, outcome{want: want, st: st, err: err})
			mu.Unlock()
		})
	}
	for _, v := range values {
		if l, held := leases[v]; held {
			id, stale := l.LeaseID, l.LeaseID+1000
			send(v, &id, nil)
			send(v, &stale, tokens.ErrLeaseMismatch)
		} else {
			send(v, nil, nil)
		}
	}
	for i := range 8 {
		send(fmt.Sprintf("no-such-token-%d", i), nil, tokens.ErrNotFound)
	}
	wg.Wait()

	kept := 0
	for _, r := range results {
		if !errors.Is(r.err, r.want) || (r.want == nil && r.err != nil) {
			t.Errorf("keep-alive: got %v, want %v", r.err, r.want)
			continue
		}
		if r.err != nil {
			continue
		}
		kept++
		l, held := leases[r.st.Token]
		switch {
		case held && (!r.st.Assigned || r.st.LeaseID == nil || *r.st.LeaseID != l.LeaseID):
			t.Errorf("%s: kept with its lease id but answered %+v", r.st.Token, r.st)
		case held && !r.st.LeaseExpiresAt.After(l.LeaseExpiresAt):
			t.Errorf("%s: lease not renewed: %s, was %s", r.st.Token, r.st.LeaseExpiresAt, l.LeaseExpiresAt)
		case !held && (r.st.Assigned || r.st.LeaseID != nil):
			t.Errorf("%s: a free token answered as assigned: %+v", r.st.Token, r.st)
		}
	}
	var audited int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM token_events WHERE kind = 'kept_alive'").Scan(&audited); err != nil {
		t.Fatal(err)
	}
	if audited != kept || kept != n {
		t.Errorf("%d keep-alives succeeded (want %d), %d kept_alive audit rows", kept, n, audited)
	}
}
