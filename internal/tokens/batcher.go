package tokens

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"
)

// batcher coalesces concurrent requests of one kind into rounds ("smart
// batching"). While one round is in flight, new requests queue; when it
// returns, everything queued (up to max per group) goes out as the next
// round. An idle batcher sends a lone request at once, so batching adds no
// latency at low load, and the batch size follows the load by itself.
//
// No goroutine of its own runs the batches: the request that finds the
// batcher idle leads (runs the statement for its batch); when a statement
// returns, the leader hands the next batch to the first request queued in
// it, which runs that one, and so on. A request's caller therefore waits at
// most for the batch in flight plus its own (and, under load, the window).
//
// Under load, the next round waits a little for the callers of the round
// just answered to come back (see window), so that they share it: without,
// a pod's closed-loop callers split into cohorts that take turns (a lone
// leader, then the 15 queued behind it; or two halves, each queuing while
// the other's round is in flight), and every cohort costs the database a
// round (statements, a commit) of its own. When the database is slow
// (rounds take longer than the callers take to come back) one round per
// turn serves more requests with less database work; the wait is capped
// by half the last round's duration and by maxWindow. An idle batcher, or
// one whose last round was a lone request or ended long ago, never waits.
type batcher[Req, Res any] struct {
	max int
	// run executes one batch: it must set res or err of every call.
	run func(calls []*batchCall[Req, Res])
	// key, when set, names the row a request touches: two requests with the
	// same key never share a batch (the later one waits for the next), so
	// that they apply one after the other, as without batching. An empty key
	// names no row.
	key func(Req) string
	// group, when set, names the group (the pool, or pool and kind) of a
	// request: a round takes up to max requests of each group, so that a busy group never
	// crowds a quiet one out of a round.
	group func(Req) int64
	// statement, when set, names the statement a request goes out in, where
	// that is not its group (a statement serving several pools): the window
	// counts a round's statements with it (default: its groups).
	statement func(Req) int64

	// maxWindow caps how long a leader waits for the callers of the last
	// round to come back (0: never waits).
	maxWindow time.Duration
	now       func() time.Time // the clock of the window (tests replace it)

	mu    sync.Mutex
	busy  bool
	queue []*batchCall[Req, Res]
	// The last round: how many calls it held, when it ended, how long it
	// ran, and how many calls the next round expects: those queued when it
	// ended and its own callers, coming back (see window).
	lastSize       int
	lastStatements int // the statements it sent (see statement)
	lastEnd        time.Time
	lastTook       time.Duration
	expect         int
	// While a leader waits for the queue to fill: the queue length it waits
	// for (0: none waits), and its signal.
	want   int
	filled chan struct{}

	calls sync.Pool // of *batchCall, reused across requests
}

type batchCall[Req, Res any] struct {
	ctx  context.Context
	req  Req
	res  Res
	err  error
	done chan struct{}          // signalled once: res/err are set, or lead is
	lead []*batchCall[Req, Res] // set when this call is to run the next batch
	// again, set by run, puts the call into the next round instead of
	// answering it (a claim that found no token tries once more, with a
	// fresh snapshot, without holding up the round's other answers).
	again bool
	tries int // rounds the call has been in
	// leads, set when this call is to lead the next round, makes it first
	// wait for the round to fill (see window), then take it.
	leads bool
}

func newBatcher[Req, Res any](max int, key func(Req) string, group func(Req) int64, run func([]*batchCall[Req, Res])) *batcher[Req, Res] {
	return &batcher[Req, Res]{max: max, key: key, group: group, run: run, filled: make(chan struct{}, 1), now: time.Now}
}

// window is how long the leader of the next round (not itself in the
// queue) waits, at now, for the queue to hold want calls before it takes
// its round: when the last round held several calls and ended less than its
// own duration ago (under load, its callers come back about now), up to
// half that duration, capped by maxWindow, for the calls queued when it
// ended plus its own callers (at most max). b.mu is held.
//
// A round whose statements held one call each on average (one pool's
// assign and unblock each in many pools, one statement per pool) does not
// wait: its callers coming back would mostly add statements to the next
// round, not rows to its statements, and waiting would only idle the
// database.
func (b *batcher[Req, Res]) window(now time.Time) (wait time.Duration, want int) {
	if b.maxWindow <= 0 || b.lastSize < 2*max(b.lastStatements, 1) || now.Sub(b.lastEnd) > b.lastTook {
		return 0, 0
	}
	return min(b.lastTook/2, b.maxWindow), min(b.expect, b.max) - 1
}

// enqueue queues c behind the round in flight (or a waiting leader); b.mu
// is held.
func (b *batcher[Req, Res]) enqueue(c *batchCall[Req, Res]) {
	b.queue = append(b.queue, c)
	if b.want > 0 && len(b.queue) >= b.want {
		b.want = 0
		select {
		case b.filled <- struct{}{}:
		default:
		}
	}
}

// await lets the queue fill before a leader takes its round: for the
// window under load, else only the goroutines runnable right now (requests
// that arrived together); an idle pod sends a lone request at once.
func (b *batcher[Req, Res]) await() {
	b.mu.Lock()
	wait, want := b.window(b.now())
	if wait <= 0 || len(b.queue) >= want {
		b.mu.Unlock()
		runtime.Gosched()
		return
	}
	b.want = want
	b.mu.Unlock()
	t := time.NewTimer(wait)
	select {
	case <-b.filled:
	case <-t.C:
	}
	t.Stop()
	b.mu.Lock()
	b.want = 0
	select { // a signal sent as the timer fired
	case <-b.filled:
	default:
	}
	b.mu.Unlock()
}

// do runs req in the next batch and returns its own result.
func (b *batcher[Req, Res]) do(ctx context.Context, req Req) (Res, error) {
	c, _ := b.calls.Get().(*batchCall[Req, Res])
	if c == nil {
		c = &batchCall[Req, Res]{done: make(chan struct{}, 1)}
	}
	c.ctx, c.req = ctx, req
	defer b.release(c)
	b.mu.Lock()
	if !b.busy {
		b.busy = true
		b.mu.Unlock()
		b.await()
		b.mu.Lock()
		batch := b.take(c)
		b.mu.Unlock()
		if !b.lead(c, batch) {
			return c.res, c.err
		}
	} else {
		b.enqueue(c)
		b.mu.Unlock()
	}
	// Always wait for the answer, even when ctx ends: the call may already be
	// part of a round in flight, or be the one to lead the next round.
	// Calls whose context has ended before their round starts are answered
	// with the context's error and not sent (see runnable).
	for {
		<-c.done
		if c.leads {
			c.leads = false
			b.await()
			b.mu.Lock()
			next := b.take(c)
			b.mu.Unlock()
			if !b.lead(c, next) {
				return c.res, c.err
			}
			continue
		}
		next := c.lead
		if next == nil {
			return c.res, c.err
		}
		c.lead = nil
		if !b.lead(c, next) {
			return c.res, c.err
		}
	}
}

// release returns a finished call to b.calls for reuse. No other goroutine touches it
// any more: a leader signals a call after writing its result, and last.
func (b *batcher[Req, Res]) release(c *batchCall[Req, Res]) {
	var zeroReq Req
	var zeroRes Res
	c.ctx, c.req, c.res, c.err, c.lead, c.again, c.tries, c.leads = nil, zeroReq, zeroRes, nil, nil, false, 0, false
	b.calls.Put(c)
}

// lead runs batch (which holds self), then passes the lead on to the next
// round, if any requests have queued or go again, and wakes the round's
// other callers. It reports whether self goes again (its caller must then
// wait for its answer like any queued call).
func (b *batcher[Req, Res]) lead(self *batchCall[Req, Res], batch []*batchCall[Req, Res]) (selfAgain bool) {
	for _, c := range batch {
		c.tries++
	}
	statements := b.statements(batch)
	start := b.now()
	b.safeRun(batch)
	end := b.now()
	b.mu.Lock()
	b.lastSize, b.lastStatements, b.lastEnd, b.lastTook = len(batch), statements, end, end.Sub(start)
	var again []*batchCall[Req, Res]
	for _, c := range batch {
		if c.again {
			c.again = false
			again = append(again, c)
		}
	}
	if len(again) > 0 {
		b.queue = append(slices.Clone(again), b.queue...) // take clears what it takes
	}
	b.expect = len(b.queue) + len(batch) - len(again)
	var next []*batchCall[Req, Res]
	var leader *batchCall[Req, Res]
	switch wait, want := b.window(end); {
	case len(b.queue) == 0:
		b.busy = false
	case wait > 0 && len(b.queue)-1 < want:
		// The next round waits for this one's callers: its leader (the
		// first queued) does, after they were woken below.
		leader = b.queue[0]
		b.queue = slices.Delete(b.queue, 0, 1)
	default:
		next = b.take(nil)
	}
	b.mu.Unlock()
	if len(next) > 0 {
		// Start the next round first: the database should not idle while
		// this goroutine wakes the waiters.
		next[0].lead = next
		next[0].done <- struct{}{}
	}
	for _, c := range batch {
		switch {
		case c == self:
		case slices.Contains(again, c):
			// still queued: answered by a later round
		default:
			c.done <- struct{}{} // c is its caller's again from here on
		}
	}
	if leader != nil {
		leader.leads = true
		leader.done <- struct{}{}
	}
	return slices.Contains(again, self)
}

// statements counts the statements of a round's calls: their groups, or their
// statements when those span groups.
func (b *batcher[Req, Res]) statements(batch []*batchCall[Req, Res]) int {
	of := b.group
	if b.statement != nil {
		of = b.statement
	}
	if of == nil || len(batch) < 2 {
		return 1
	}
	seen := make(map[int64]struct{}, 8)
	for _, c := range batch {
		seen[of(c.req)] = struct{}{}
	}
	return len(seen)
}

// safeRun runs a batch; a panic becomes every call's error, so that the
// waiters and the lead hand-over are never lost.
func (b *batcher[Req, Res]) safeRun(batch []*batchCall[Req, Res]) {
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("tokens: batch failed: %v", p)
			for _, c := range batch {
				c.err, c.again = err, false
			}
		}
	}()
	b.run(batch)
}

// take removes the next round from the queue, after first when given; b.mu
// is held.
func (b *batcher[Req, Res]) take(first *batchCall[Req, Res]) []*batchCall[Req, Res] {
	batch := make([]*batchCall[Req, Res], 0, min(len(b.queue)+1, b.max))
	if first != nil {
		batch = append(batch, first)
	}
	if b.key == nil && b.group == nil && len(batch)+len(b.queue) <= b.max {
		batch = append(batch, b.queue...)
		clear(b.queue)
		b.queue = b.queue[:0]
		return batch
	}
	// Requests per group and keys in the round so far.
	groups := map[int64]int{}
	keys := map[string]bool{}
	admit := func(c *batchCall[Req, Res]) bool {
		var g int64
		if b.group != nil {
			g = b.group(c.req)
		}
		var k string
		if b.key != nil {
			if k = b.key(c.req); k != "" && keys[k] {
				return false
			}
		}
		if groups[g] >= b.max {
			return false
		}
		groups[g]++
		if k != "" {
			keys[k] = true
		}
		return true
	}
	if first != nil {
		admit(first)
	}
	rest := b.queue[:0]
	for _, c := range b.queue {
		if admit(c) {
			batch = append(batch, c)
		} else {
			rest = append(rest, c)
		}
	}
	clear(b.queue[len(rest):])
	b.queue = rest
	return batch
}

// runnable answers the calls whose context has ended with its error and
// returns the others, which the statement is to serve.
func runnable[Req, Res any](calls []*batchCall[Req, Res]) []*batchCall[Req, Res] {
	live := calls[:0:0]
	for _, c := range calls {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			continue
		}
		live = append(live, c)
	}
	return live
}
