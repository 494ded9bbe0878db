package tokens

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// A round holds up to max requests of each pool: a busy pool's queue never
// keeps a quiet pool's request out of the next round.
func TestBatcherCapsEachPoolNotTheRound(t *testing.T) {
	t.Parallel()
	g := newGatedRunner()
	b := newBatcher(2, nil, func(s string) int64 { return int64(s[0]) }, g.run)
	results := make(chan result, 10)
	go func() { res, err := b.do(context.Background(), "x0"); results <- result{"x0", res, err} }()
	<-g.entered
	for i, req := range []string{"a1", "a2", "a3", "a4", "b1"} {
		go func() { res, err := b.do(context.Background(), req); results <- result{req, res, err} }()
		waitQueued(t, b, i+1)
	}
	close(g.gate)
	for range 6 {
		if r := <-results; r.err != nil || r.res != "re:"+r.req {
			t.Errorf("%s: got %q, %v", r.req, r.res, r.err)
		}
	}
	want := [][]string{{"x0"}, {"a1", "a2", "b1"}, {"a3", "a4"}}
	if got := g.got(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("rounds %v, want %v", got, want)
	}
}

// A request run sends again (a claim that found no token) goes in the next
// round; the others of its round are answered without waiting for it, and
// a leader sent again waits for its answer like any queued request.
func TestBatcherAgainGoesInTheNextRound(t *testing.T) {
	t.Parallel()
	var rounds [][]string
	answered := make(chan string, 10)
	waitForK := false
	var b *batcher[string, string]
	b = newBatcher(8, nil, nil, func(calls []*batchCall[string, string]) {
		var reqs []string
		for _, c := range calls {
			reqs = append(reqs, c.req)
			if strings.HasPrefix(c.req, "again") && c.tries == 1 {
				c.again = true
				continue
			}
			c.res = "re:" + c.req
		}
		rounds = append(rounds, reqs) // one round at a time: no lock needed
		if waitForK && len(rounds) == 2 {
			// The second round ("again" alone) runs only after "k" of the
			// first round was answered.
			if got := <-answered; got != "k" {
				t.Errorf("answered before the second round: %q, want k", got)
			}
		}
	})
	if res, err := b.do(context.Background(), "again-lone"); err != nil || res != "re:again-lone" {
		t.Fatalf("lone leader sent again: %q, %v", res, err)
	}
	if want := [][]string{{"again-lone"}, {"again-lone"}}; !slices.EqualFunc(rounds, want, slices.Equal) {
		t.Fatalf("rounds %v, want %v", rounds, want)
	}
	rounds, waitForK = nil, true
	// Both in one round: drive it directly through lead, as do would.
	calls := []*batchCall[string, string]{
		{ctx: context.Background(), req: "again", done: make(chan struct{}, 1)},
		{ctx: context.Background(), req: "k", done: make(chan struct{}, 1)},
	}
	b.mu.Lock()
	b.busy = true
	b.mu.Unlock()
	go func() {
		<-calls[1].done
		answered <- calls[1].req
	}()
	if !b.lead(calls[0], calls) {
		t.Fatal("the leader sent again was not told to wait")
	}
	<-calls[0].done
	next := calls[0].lead
	calls[0].lead = nil
	if b.lead(calls[0], next) || calls[0].res != "re:again" || calls[1].res != "re:k" {
		t.Fatalf("after the second round: %q, %q", calls[0].res, calls[1].res)
	}
	if want := [][]string{{"again", "k"}, {"again"}}; !slices.EqualFunc(rounds, want, slices.Equal) {
		t.Fatalf("rounds %v, want %v", rounds, want)
	}
}

// One round with requests of three pools: each pool gets its own statement
// in one pipeline; every lease is of the request's own pool; a pool with no
// free token answers no_free_token after its second round, while the
// others are served in the first; and an unblock round over the pools
// releases them all.
func TestRoundOfSeveralPools(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t)
	conns, s := bundle.Conns, bundle.Svc
	for _, p := range []string{"p1", "p2", "empty"} {
		if _, _, err := s.PutPool(ctx, p, PoolSettings{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"", "p1", "p2"} {
		if _, err := s.Generate(ctx, p, 5); err != nil {
			t.Fatal(err)
		}
	}
	reqs := []AssignRequest{{Pool: "p2"}, {Pool: "empty"}, {Pool: ""}, {Pool: "p1"}, {Pool: "p2"}, {Pool: "p1"}}
	calls := make([]*batchCall[claimReq, Lease], len(reqs))
	for i, r := range reqs {
		ref, err := s.resolve(ctx, r.Pool)
		if err != nil {
			t.Fatal(err)
		}
		calls[i] = &batchCall[claimReq, Lease]{ctx: ctx, req: claimReq{ref: ref, ttl: ref.leaseTTL}}
	}
	byReq := slices.Clone(calls) // the round sorts its calls by pool
	for _, c := range calls {
		c.tries = 1
	}
	s.runAssignBatch(calls)
	for i, c := range byReq {
		if reqs[i].Pool == "empty" {
			if !c.again || c.err != nil {
				t.Fatalf("request in the empty pool after one round: again %v, err %v", c.again, c.err)
			}
			continue
		}
		if c.err != nil || c.again {
			t.Fatalf("request %d (%q): err %v, again %v", i, reqs[i].Pool, c.err, c.again)
		}
		var pool string
		if err := conns.QueryRow(ctx, "SELECT p.name FROM tokens t JOIN pools p ON p.id = t.pool_id WHERE t.value = $1 AND t.lease_id = $2", c.res.Token, c.res.LeaseID).Scan(&pool); err != nil {
			t.Fatalf("request %d: lease %d on %s: %v", i, c.res.LeaseID, c.res.Token, err)
		}
		if want := reqs[i].Pool; pool != want && !(want == "" && pool == "default") {
			t.Fatalf("request %d for pool %q got a token of pool %q", i, want, pool)
		}
	}
	empty := byReq[1]
	empty.again, empty.tries = false, 2
	s.runAssignBatch([]*batchCall[claimReq, Lease]{empty})
	if !errors.Is(empty.err, ErrNoFreeToken) {
		t.Fatalf("empty pool after two rounds: %v", empty.err)
	}

	var unblocks []*batchCall[leaseRef, struct{}]
	for i, c := range byReq {
		if reqs[i].Pool != "empty" {
			unblocks = append(unblocks, &batchCall[leaseRef, struct{}]{ctx: ctx, req: leaseRef{ref: c.req.ref, token: c.res.Token, leaseID: &c.res.LeaseID}})
		}
	}
	s.runUnblockBatch(unblocks)
	for _, c := range unblocks {
		if c.err != nil {
			t.Fatalf("unblock of %s in pool %s: %v", c.req.token, c.req.ref.name, c.err)
		}
	}
	var leased int
	if err := conns.QueryRow(ctx, "SELECT count(*) FROM tokens WHERE lease_id IS NOT NULL").Scan(&leased); err != nil {
		t.Fatal(err)
	}
	if leased != 0 {
		t.Fatalf("%d tokens still leased after the unblock round", leased)
	}
}
