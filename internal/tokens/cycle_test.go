package tokens

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest/wait"
)

// runAssignBatch runs assigns as a round of the cycles batcher (the tests
// of the claim statement predate the shared round).
func (s *Service) runAssignBatch(calls []*batchCall[claimReq, Lease]) {
	cc := make([]*batchCall[cycleReq, Lease], len(calls))
	for i, c := range calls {
		cc[i] = &batchCall[cycleReq, Lease]{ctx: c.ctx, req: cycleReq{claim: c.req}, tries: c.tries}
	}
	s.runCycleBatch(slices.Clone(cc)) // the round sorts its calls by pool
	for i, c := range calls {
		c.res, c.err, c.again = cc[i].res, cc[i].err, cc[i].again
	}
}

// runUnblockBatch runs unblocks as a round of the cycles batcher.
func (s *Service) runUnblockBatch(calls []*batchCall[leaseRef, struct{}]) {
	cc := make([]*batchCall[cycleReq, Lease], len(calls))
	for i, c := range calls {
		cc[i] = &batchCall[cycleReq, Lease]{ctx: c.ctx, req: cycleReq{unblock: true, ref: c.req}, tries: c.tries}
	}
	s.runCycleBatch(slices.Clone(cc))
	for i, c := range calls {
		c.err = cc[i].err
	}
}

// One round of unblocks and assigns over two pools: the unblocks release,
// and in a pool whose only token an unblock of the round frees, the assign
// of the same round gets that token (the pool's ClaimBatch runs after its
// ReleaseBatch, in the same transaction); requests of the other pool are
// served in the same round.
func TestCycleRoundUnblocksThenAssignsInOneTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t)
	conns, s := bundle.Conns, bundle.Svc
	if _, _, err := s.PutPool(ctx, "one", PoolSettings{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Generate(ctx, "one", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Generate(ctx, "", 3); err != nil {
		t.Fatal(err)
	}
	one := claimReqOf(t, s, AssignRequest{Pool: "one"})
	one.ttl = time.Minute
	def := claimReqOf(t, s, AssignRequest{})
	def.ttl = time.Minute
	held, err := s.claimOne(ctx, one)
	if err != nil {
		t.Fatal(err)
	}
	heldDef, err := s.claimOne(ctx, def)
	if err != nil {
		t.Fatal(err)
	}
	calls := []*batchCall[cycleReq, Lease]{
		{ctx: ctx, req: cycleReq{claim: claimReq{ref: one.ref, ttl: time.Minute, holder: "next"}}},
		{ctx: ctx, req: cycleReq{claim: def}},
		{ctx: ctx, req: cycleReq{unblock: true, ref: leaseRef{ref: one.ref, token: held.Token, leaseID: &held.LeaseID}}},
		{ctx: ctx, req: cycleReq{unblock: true, ref: leaseRef{ref: def.ref, token: heldDef.Token, leaseID: &heldDef.LeaseID}}},
		{ctx: ctx, req: cycleReq{unblock: true, ref: leaseRef{ref: def.ref, token: "no-such-token"}}},
	}
	byReq := slices.Clone(calls)
	for _, c := range calls {
		c.tries = 1
	}
	s.runCycleBatch(calls)
	for i, c := range byReq[:4] {
		if c.err != nil || c.again {
			t.Fatalf("request %d: err %v, again %v", i, c.err, c.again)
		}
	}
	if !errors.Is(byReq[4].err, ErrNotFound) {
		t.Fatalf("unblock of an unknown token: %v, want not_found", byReq[4].err)
	}
	if got := byReq[0].res; got.Token != held.Token || got.Holder != "next" || got.LeaseID <= held.LeaseID {
		t.Fatalf("assign in pool one got %+v, want %s freed by the round's unblock", got, held.Token)
	}
	// One transaction: the round's audit rows share one transaction id.
	var xids int
	if err := conns.QueryRow(ctx, `SELECT count(DISTINCT xid) FROM token_events
		WHERE kind IN ('assigned', 'unblocked') AND lease_id > $1`, heldDef.LeaseID).Scan(&xids); err != nil {
		t.Fatal(err)
	}
	if xids != 1 {
		t.Fatalf("the round's audit rows came from %d transactions, want 1", xids)
	}
	for _, pool := range []string{"one", ""} {
		st, err := s.Stats(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		if st.Assigned != 1 {
			t.Fatalf("pool %q: stats %+v, want 1 assigned", pool, st)
		}
	}
}

// A failed statement fails the whole round: every request, of either kind,
// gets the error, and nothing of the round stays.
func TestCycleRoundFailsWhole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t)
	conns, s := bundle.Conns, bundle.Svc
	if _, err := s.Generate(ctx, "", 3); err != nil {
		t.Fatal(err)
	}
	def := claimReqOf(t, s, AssignRequest{})
	def.ttl = time.Minute
	held, err := s.claimOne(ctx, def)
	if err != nil {
		t.Fatal(err)
	}
	bad := def
	bad.holder = "\xff" // not UTF-8: the claim statement fails
	calls := []*batchCall[cycleReq, Lease]{
		{ctx: ctx, req: cycleReq{unblock: true, ref: leaseRef{ref: def.ref, token: held.Token, leaseID: &held.LeaseID}}},
		{ctx: ctx, req: cycleReq{claim: bad}},
	}
	byReq := slices.Clone(calls)
	s.runCycleBatch(calls)
	for i, c := range byReq {
		if c.err == nil || c.again {
			t.Fatalf("request %d: err %v, again %v; want the round's error", i, c.err, c.again)
		}
	}
	var leased int
	if err := conns.QueryRow(ctx, "SELECT count(*) FROM tokens WHERE lease_id IS NOT NULL").Scan(&leased); err != nil {
		t.Fatal(err)
	}
	if leased != 1 {
		t.Fatalf("%d tokens leased after the failed round, want 1 (the unblock undone)", leased)
	}
}

// The cycles batcher keeps two unblocks of one token apart but lets
// assigns (no token named) share a round freely, capped per pool and kind.
func TestCycleGroupsAndKeys(t *testing.T) {
	t.Parallel()
	a := cycleReq{claim: claimReq{ref: poolRef{id: 3}}}
	u := cycleReq{unblock: true, ref: leaseRef{ref: poolRef{id: 3}, token: "x"}}
	if cycleGroup(a) == cycleGroup(u) {
		t.Fatal("assigns and unblocks of one pool share a group")
	}
	if cycleKey(a) != "" || cycleKey(u) == "" {
		t.Fatalf("keys %q, %q", cycleKey(a), cycleKey(u))
	}
	g := newGatedRunner()
	b := newBatcher(2, func(s string) string {
		if s[0] == 'u' {
			return s[:2]
		}
		return ""
	}, func(s string) int64 { return int64(s[0]) }, g.run)
	results := make(chan result, 10)
	go func() { res, err := b.do(context.Background(), "x0"); results <- result{"x0", res, err} }()
	<-g.entered
	for i, req := range []string{"a1", "a2", "a3", "ux1", "ux2", "uy1"} {
		go func() { res, err := b.do(context.Background(), req); results <- result{req, res, err} }()
		waitQueued(t, b, i+1)
	}
	close(g.gate)
	for range 7 {
		if r := <-results; r.err != nil || r.res != "re:"+r.req {
			t.Errorf("%s: got %q, %v", r.req, r.res, r.err)
		}
	}
	want := [][]string{{"x0"}, {"a1", "a2", "ux1", "uy1"}, {"a3", "ux2"}}
	if got := g.got(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("rounds %v, want %v", got, want)
	}
}

// gatedBatcher is the window tests' batcher (string requests, answered
// "re:"+request): it records its rounds, announces each on entered by its
// number, and holds rounds 1 and 2 until their gate is closed; send runs a
// request whose answer arrives on results. Its clock is stepClock's and its
// window an hour, so only the window's rules decide.
type gatedBatcher struct {
	b       *batcher[string, string]
	entered chan int
	gates   map[int]chan struct{}
	results chan result

	mu     sync.Mutex
	rounds [][]string
}

func newGatedBatcher(group func(string) int64) *gatedBatcher {
	g := &gatedBatcher{
		entered: make(chan int, 10),
		gates:   map[int]chan struct{}{1: make(chan struct{}), 2: make(chan struct{})},
		results: make(chan result, 10),
	}
	g.b = newBatcher(8, nil, group, func(calls []*batchCall[string, string]) {
		reqs := make([]string, len(calls))
		for i, c := range calls {
			reqs[i], c.res = c.req, "re:"+c.req
		}
		g.mu.Lock()
		g.rounds = append(g.rounds, reqs)
		n := len(g.rounds)
		g.mu.Unlock()
		g.entered <- n
		if gate := g.gates[n]; gate != nil {
			<-gate
		}
	})
	g.b.maxWindow, g.b.now = time.Hour, stepClock()
	return g
}

func (g *gatedBatcher) send(req string) {
	go func() { res, err := g.b.do(context.Background(), req); g.results <- result{req, res, err} }()
}

// recorded returns the rounds so far, each its requests in round order.
func (g *gatedBatcher) recorded() [][]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.rounds)
}

// stepClock is a clock for the batcher's window that moves an hour on
// every reading: every round seems to take an hour, so a waiting leader
// waits until the round fills (the window is maxWindow), never for time.
func stepClock() func() time.Time {
	var mu sync.Mutex
	t := time.Unix(0, 0)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Hour)
		return t
	}
}

// Under load the next round waits for the callers of the round just
// answered: with one request queued when a round of two ends, the next
// round takes it together with the two callers coming back, not alone;
// and a request that finds the batcher idle right after a round of three
// waits for two more. A lone request with no load before goes at once.
func TestBatcherWindowMergesTheReturningCallers(t *testing.T) {
	t.Parallel()
	g := newGatedBatcher(nil)
	b, entered, gates, results, send := g.b, g.entered, g.gates, g.results, g.send
	answered := func(n int) map[string]bool {
		got := map[string]bool{}
		for range n {
			r := <-results
			if r.err != nil || r.res != "re:"+r.req {
				t.Fatalf("%s: got %q, %v", r.req, r.res, r.err)
			}
			got[r.req] = true
		}
		return got
	}
	waiting := func() {
		wait.Eventually(t, 10*time.Second, "a leader waiting for its round to fill", func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			return b.want > 0
		})
	}

	send("x0") // no load before: goes at once, alone
	if n := <-entered; n != 1 {
		t.Fatalf("round %d entered first", n)
	}
	send("a")
	waitQueued(t, b, 1)
	send("b")
	waitQueued(t, b, 2)
	close(gates[1]) // [x0] ends; [a b] goes at once (x0's round was a lone one)
	<-entered
	answered(1)
	send("c")
	waitQueued(t, b, 1)
	close(gates[2]) // [a b] ends with c queued: c waits for a and b to come back
	if got := answered(2); !got["a"] || !got["b"] {
		t.Fatalf("answered %v, want a and b", got)
	}
	waiting()
	send("a2")
	send("b2")
	<-entered
	answered(3)
	send("d") // idle after a round of three: waits for two more
	waiting()
	send("e")
	send("f")
	<-entered
	answered(3)
	rounds := g.recorded()
	want := [][]string{{"x0"}, {"a", "b"}, {"c", "a2", "b2"}, {"d", "e", "f"}}
	if len(rounds) != len(want) {
		t.Fatalf("rounds %v, want %v", rounds, want)
	}
	for i, r := range rounds {
		if !slices.Equal(r[:1], want[i][:1]) || len(r) != len(want[i]) {
			t.Fatalf("rounds %v, want %v (the leader first, the others in any order)", rounds, want)
		}
	}
}

// A round that held one call per group (pool and kind) does not wait for
// its callers: they would add statements, not rows. The request queued
// behind it goes at once, alone.
func TestBatcherWindowSkipsRoundsOfOnePerGroup(t *testing.T) {
	t.Parallel()
	g := newGatedBatcher(func(s string) int64 { return int64(s[0]) })
	b, entered, gates, results, send := g.b, g.entered, g.gates, g.results, g.send
	send("x0")
	<-entered
	send("a1")
	waitQueued(t, b, 1)
	send("b1")
	waitQueued(t, b, 2)
	close(gates[1]) // [x0] ends; [a1 b1] (two groups, one call each) goes
	<-entered
	send("c1")
	waitQueued(t, b, 1)
	close(gates[2]) // [a1 b1] ends: c1 goes at once, without waiting for a1 and b1
	<-entered
	for range 4 {
		if r := <-results; r.err != nil || r.res != "re:"+r.req {
			t.Fatalf("%s: got %q, %v", r.req, r.res, r.err)
		}
	}
	rounds := g.recorded()
	if want := [][]string{{"x0"}, {"a1", "b1"}, {"c1"}}; !slices.EqualFunc(rounds, want, slices.Equal) {
		t.Fatalf("rounds %v, want %v", rounds, want)
	}
}

// A round over eight pools: every request gets a token of its own pool.
// Across pools (the default) the round is one statement per kind, one
// transaction; one statement per pool (BATCH_ACROSS_POOLS=off) makes eight,
// sent as two parts, each its own transaction on its own connection.
func TestCycleRoundOfManyPools(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		perPool      bool
		transactions int
	}{
		{"across pools", false, 1},
		{"per pool", true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			bundle := setup(t, func(s *Settings) { s.BatchPerPool = tc.perPool })
			conns, s := bundle.Conns, bundle.Svc
			var calls []*batchCall[cycleReq, Lease]
			names := map[int32]string{}
			for i := range 8 {
				name := "p" + string(rune('a'+i))
				if _, _, err := s.PutPool(ctx, name, PoolSettings{}); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Generate(ctx, name, 2); err != nil {
					t.Fatal(err)
				}
				cr := claimReqOf(t, s, AssignRequest{Pool: name})
				cr.ttl = time.Minute
				names[cr.ref.id] = name
				calls = append(calls, &batchCall[cycleReq, Lease]{ctx: ctx, req: cycleReq{claim: cr}, tries: 1})
			}
			byReq := slices.Clone(calls)
			s.runCycleBatch(calls)
			for _, c := range byReq {
				if c.err != nil || c.again {
					t.Fatalf("pool %s: err %v, again %v", names[c.req.pool()], c.err, c.again)
				}
				var pool string
				if err := conns.QueryRow(ctx, "SELECT p.name FROM tokens t JOIN pools p ON p.id = t.pool_id WHERE t.value = $1 AND t.lease_id = $2", c.res.Token, c.res.LeaseID).Scan(&pool); err != nil {
					t.Fatal(err)
				}
				if pool != names[c.req.pool()] {
					t.Fatalf("request of pool %s got a token of pool %s", names[c.req.pool()], pool)
				}
			}
			var xids int
			if err := conns.QueryRow(ctx, "SELECT count(DISTINCT xid) FROM token_events WHERE kind = 'assigned'").Scan(&xids); err != nil {
				t.Fatal(err)
			}
			if xids != tc.transactions {
				t.Fatalf("the round's audit rows came from %d transactions, want %d", xids, tc.transactions)
			}
			var counted int64
			if err := conns.QueryRow(ctx, "SELECT sum(assigned) FROM token_counters").Scan(&counted); err != nil {
				t.Fatal(err)
			}
			if counted != 8 {
				t.Fatalf("counters say %d assigned, want 8 (one in each pool)", counted)
			}
		})
	}
}
