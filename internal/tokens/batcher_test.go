package tokens

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest/wait"
)

// gatedRunner is a batch runner whose first batch blocks until released, so
// that a test can queue requests behind it deterministically.
type gatedRunner struct {
	mu      sync.Mutex
	batches [][]string
	gate    chan struct{}
	entered chan struct{}
}

func newGatedRunner() *gatedRunner {
	return &gatedRunner{gate: make(chan struct{}), entered: make(chan struct{}, 100)}
}

func (g *gatedRunner) run(calls []*batchCall[string, string]) {
	reqs := make([]string, len(calls))
	for i, c := range calls {
		reqs[i] = c.req
	}
	g.mu.Lock()
	first := len(g.batches) == 0
	g.batches = append(g.batches, reqs)
	g.mu.Unlock()
	g.entered <- struct{}{}
	if first {
		<-g.gate
	}
	for _, c := range runnable(calls) {
		if c.req == "fail" {
			c.err = errors.New("refused")
			continue
		}
		c.res = "re:" + c.req
	}
}

func (g *gatedRunner) got() [][]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.batches)
}

// waitQueued waits until n requests sit in the batcher's queue, failing the
// test when more do, or when they do not within a generous deadline.
func waitQueued[Req, Res any](t *testing.T, b *batcher[Req, Res], n int) {
	t.Helper()
	wait.Eventually(t, 10*time.Second, fmt.Sprintf("%d queued requests", n), func() bool {
		b.mu.Lock()
		q := len(b.queue)
		b.mu.Unlock()
		if q > n {
			t.Fatalf("queue holds %d requests, want %d", q, n)
		}
		return q == n
	})
}

type result struct {
	req, res string
	err      error
}

func TestBatcherCoalescesWhileBusy(t *testing.T) {
	t.Parallel()
	g := newGatedRunner()
	b := newBatcher(64, nil, nil, g.run)
	results := make(chan result, 10)
	ask := func(req string, ctx context.Context) {
		res, err := b.do(ctx, req)
		results <- result{req, res, err}
	}
	go ask("lone", context.Background())
	<-g.entered // the lone request went out at once, by itself

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 5 {
		go ask(fmt.Sprint("q", i), context.Background())
	}
	go ask("fail", context.Background())
	go ask("gone", cancelled)
	waitQueued(t, b, 7)
	close(g.gate)

	got := map[string]result{}
	for range 8 {
		r := <-results
		got[r.req] = r
	}
	batches := g.got()
	if len(batches) != 2 || !slices.Equal(batches[0], []string{"lone"}) || len(batches[1]) != 7 {
		t.Fatalf("batches %v: want [lone] then the 7 queued requests together", batches)
	}
	for req, r := range got {
		switch req {
		case "fail":
			if r.err == nil || r.err.Error() != "refused" {
				t.Errorf("fail: got %q, %v", r.res, r.err)
			}
		case "gone":
			if !errors.Is(r.err, context.Canceled) {
				t.Errorf("a request whose context ended before its batch: got %q, %v", r.res, r.err)
			}
		default:
			if r.err != nil || r.res != "re:"+req {
				t.Errorf("%s: got %q, %v", req, r.res, r.err)
			}
		}
	}
	// Idle again: the next request goes out at once.
	if res, err := b.do(context.Background(), "again"); err != nil || res != "re:again" {
		t.Fatalf("after the batches: %q, %v", res, err)
	}
}

func TestBatcherCapAndKeys(t *testing.T) {
	t.Parallel()
	g := newGatedRunner()
	b := newBatcher(3, func(s string) string { return s[:1] }, nil, g.run)
	results := make(chan result, 10)
	go func() { res, err := b.do(context.Background(), "x0"); results <- result{"x0", res, err} }()
	<-g.entered
	// Queued in this order: a1 a2 b1 c1 d1. Cap 3 and no two requests with
	// the same key in one batch: [a1 b1 c1], then [a2 d1].
	for i, req := range []string{"a1", "a2", "b1", "c1", "d1"} {
		go func() { res, err := b.do(context.Background(), req); results <- result{req, res, err} }()
		waitQueued(t, b, i+1) // one at a time, to keep the order
	}
	close(g.gate)
	for range 6 {
		if r := <-results; r.err != nil || r.res != "re:"+r.req {
			t.Errorf("%s: got %q, %v", r.req, r.res, r.err)
		}
	}
	batches := g.got()
	want := [][]string{{"x0"}, {"a1", "b1", "c1"}, {"a2", "d1"}}
	if len(batches) != len(want) {
		t.Fatalf("batches %v, want %v", batches, want)
	}
	for i := range want {
		if !slices.Equal(batches[i], want[i]) {
			t.Fatalf("batches %v, want %v", batches, want)
		}
	}
}

func TestBatcherPanicAnswersEveryone(t *testing.T) {
	t.Parallel()
	b := newBatcher(8, nil, nil, func(calls []*batchCall[string, string]) { panic("boom") })
	if _, err := b.do(context.Background(), "x"); err == nil {
		t.Fatal("a panicking batch returned no error")
	}
	if _, err := b.do(context.Background(), "y"); err == nil {
		t.Fatal("the batcher did not recover from a panicking batch")
	}
}

// The batched statements, driven directly with several requests at once, so
// that each shape of batch is exercised whatever the scheduling.

func assignCalls(t *testing.T, s *Service, reqs ...AssignRequest) []*batchCall[claimReq, Lease] {
	calls := make([]*batchCall[claimReq, Lease], len(reqs))
	for i, r := range reqs {
		calls[i] = &batchCall[claimReq, Lease]{ctx: context.Background(), req: claimReqOf(t, s, r)}
	}
	return calls
}

// runRounds runs calls through run as a batcher does: a call run asks to
// go again is in the next round, until every call is answered.
func runRounds[Req, Res any](run func([]*batchCall[Req, Res]), calls []*batchCall[Req, Res]) {
	for len(calls) > 0 {
		for _, c := range calls {
			c.tries++
		}
		run(calls)
		var again []*batchCall[Req, Res]
		for _, c := range calls {
			if c.again {
				c.again = false
				again = append(again, c)
			}
		}
		calls = again
	}
}

// claimReqOf resolves an assign request of pool default as Assign does.
func claimReqOf(t *testing.T, s *Service, r AssignRequest) claimReq {
	t.Helper()
	ref, err := s.resolve(context.Background(), r.Pool)
	if err != nil {
		t.Fatal(err)
	}
	return claimReq{ref: ref, holder: r.Holder, ttl: r.TTL}
}

func TestClaimBatchStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t)
	pool, s := bundle.Conns, bundle.Svc
	if _, err := s.Generate(ctx, "", 5); err != nil {
		t.Fatal(err)
	}

	// Four requests, each with its own holder and TTL, get four distinct
	// tokens and increasing lease ids.
	calls := assignCalls(t, s,
		AssignRequest{Holder: "h0", TTL: time.Minute},
		AssignRequest{TTL: 2 * time.Minute},
		AssignRequest{Holder: "h2", TTL: 3 * time.Minute},
		// Milliseconds count, and the lease must not lapse by itself before
		// the test lapses it (below): a loaded machine may take long.
		AssignRequest{Holder: "h3", TTL: time.Hour + 200*time.Millisecond},
	)
	runRounds(s.runAssignBatch, calls)
	seen := map[string]bool{}
	for i, c := range calls {
		if c.err != nil {
			t.Fatalf("request %d: %v", i, c.err)
		}
		if seen[c.res.Token] {
			t.Fatalf("token %s handed to two requests of one batch", c.res.Token)
		}
		seen[c.res.Token] = true
		if want := c.req.holder; c.res.Holder != want {
			t.Errorf("request %d: holder %q, want %q", i, c.res.Holder, want)
		}
		var ttlMs int64
		if err := pool.QueryRow(ctx, "SELECT (extract(epoch FROM lease_ttl) * 1000)::bigint FROM tokens WHERE value = $1", c.res.Token).Scan(&ttlMs); err != nil {
			t.Fatal(err)
		}
		if ttlMs != c.req.ttl.Milliseconds() {
			t.Errorf("request %d: lease_ttl %d ms, want %s", i, ttlMs, c.req.ttl)
		}
	}

	// Two requests, one token left: one gets it, the other no_free_token.
	calls = assignCalls(t, s, AssignRequest{TTL: time.Minute}, AssignRequest{TTL: time.Minute})
	runRounds(s.runAssignBatch, calls)
	var ok, empty int
	for _, c := range calls {
		switch {
		case c.err == nil:
			ok++
		case errors.Is(c.err, ErrNoFreeToken):
			empty++
		default:
			t.Fatalf("unexpected error %v", c.err)
		}
	}
	if ok != 1 || empty != 1 {
		t.Fatalf("with one free token: %d assigned, %d no_free_token", ok, empty)
	}

	// Nothing free; h3's lease lapses: the batch takes it (the lapsed
	// lease is released on the audit trail), and the other request gets
	// no_free_token.
	var lapsedToken string
	if err := pool.QueryRow(ctx, "SELECT value FROM tokens WHERE holder = 'h3'").Scan(&lapsedToken); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "UPDATE tokens SET lease_expires_at = now() - interval '1 second' WHERE value = $1", lapsedToken); err != nil {
		t.Fatal(err)
	}
	calls = assignCalls(t, s, AssignRequest{Holder: "new", TTL: time.Minute}, AssignRequest{TTL: time.Minute})
	runRounds(s.runAssignBatch, calls)
	var winner Lease
	ok, empty = 0, 0
	for _, c := range calls {
		switch {
		case c.err == nil:
			ok++
			winner = c.res
		case errors.Is(c.err, ErrNoFreeToken):
			empty++
		}
	}
	if ok != 1 || empty != 1 || winner.Token != lapsedToken {
		t.Fatalf("lapsed fallback: %d assigned (%q, want %q), %d no_free_token", ok, winner.Token, lapsedToken, empty)
	}
	var kinds []string
	rows, err := pool.Query(ctx, "SELECT kind || ':' || coalesce(holder, '') FROM token_events WHERE token = $1 ORDER BY id", lapsedToken)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, k)
	}
	if want := []string{"generated:", "assigned:h3", "released:h3", "assigned:new"}; !slices.Equal(kinds, want) {
		t.Fatalf("audit trail of the lapsed token: %v, want %v", kinds, want)
	}
	st, err := s.Stats(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if st.Assigned != 5 || st.Free != 0 || st.Total != 5 {
		t.Fatalf("stats %+v, want 5 assigned of 5", st)
	}
}

func TestReleaseBatchStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t)
	pool, s := bundle.Conns, bundle.Svc
	if _, err := s.Generate(ctx, "", 5); err != nil {
		t.Fatal(err)
	}
	var leases []Lease
	for range 4 {
		l, err := s.claimOne(ctx, claimReqOf(t, s, AssignRequest{TTL: time.Minute}))
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, l)
	}
	free := ""
	if err := pool.QueryRow(ctx, "SELECT value FROM tokens WHERE lease_id IS NULL").Scan(&free); err != nil {
		t.Fatal(err)
	}
	stale := leases[1].LeaseID - 1
	reqs := []leaseRef{
		{token: leases[0].Token, leaseID: &leases[0].LeaseID}, // released
		{token: leases[1].Token, leaseID: &stale},             // lease_mismatch
		{token: leases[2].Token},                              // released, no lease id
		{token: free},                                         // not_assigned
		{token: "no-such-token"},                              // not_found
		{token: leases[3].Token, leaseID: &leases[3].LeaseID}, // released
	}
	want := []error{nil, ErrLeaseMismatch, nil, ErrNotAssigned, ErrNotFound, nil}
	calls := make([]*batchCall[leaseRef, struct{}], len(reqs))
	def := claimReqOf(t, s, AssignRequest{}).ref
	for i, r := range reqs {
		r.ref = def
		calls[i] = &batchCall[leaseRef, struct{}]{ctx: ctx, req: r}
	}
	s.runUnblockBatch(calls)
	for i, c := range calls {
		if !errors.Is(c.err, want[i]) || (want[i] == nil && c.err != nil) {
			t.Errorf("request %d (%s): got %v, want %v", i, reqs[i].token, c.err, want[i])
		}
	}
	var unblocked int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM token_events WHERE kind = 'unblocked'").Scan(&unblocked); err != nil {
		t.Fatal(err)
	}
	if unblocked != 3 {
		t.Fatalf("%d unblocked audit rows, want 3", unblocked)
	}
	st, err := s.Stats(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if st.Assigned != 1 {
		t.Fatalf("stats %+v: want 1 assigned (the mismatched lease)", st)
	}
}
