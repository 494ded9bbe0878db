package longpoll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest/wait"
	"github.com/tokenlease/tokenlease/internal/events"
	"github.com/tokenlease/tokenlease/internal/tokens"
)

// fakeAssigner is a pool of interchangeable free tokens. hold, when set, is
// called at the start of every Assign (to stall it).
type fakeAssigner struct {
	mu       sync.Mutex
	free     int
	next     int64
	assigns  int
	unblocks []int64
	hold     func(ctx context.Context)
}

func (f *fakeAssigner) ValidateAssign(_ context.Context, req tokens.AssignRequest) error {
	if req.Holder == "bad" {
		return tokens.ErrInvalidRequest
	}
	return nil
}

func (f *fakeAssigner) Assign(ctx context.Context, _ tokens.AssignRequest) (tokens.Lease, error) {
	f.mu.Lock()
	hold := f.hold
	f.mu.Unlock()
	if hold != nil {
		hold(ctx)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.assigns++
	if f.free == 0 {
		return tokens.Lease{}, tokens.ErrNoFreeToken
	}
	f.free--
	f.next++
	return tokens.Lease{Token: fmt.Sprintf("tok-%d", f.next), LeaseID: f.next}, nil
}

func (f *fakeAssigner) Unblock(_ context.Context, _, _ string, leaseID *int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unblocks = append(f.unblocks, *leaseID)
	f.free++
	return nil
}

func (f *fakeAssigner) add(n int) {
	f.mu.Lock()
	f.free += n
	f.mu.Unlock()
}

func (f *fakeAssigner) counts() (assigns int, unblocks []int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.assigns, append([]int64(nil), f.unblocks...)
}

func newTestWaiter(svc Assigner) (*Waiter, chan struct{}) {
	done := make(chan struct{})
	return &Waiter{svc: svc, done: done, logger: slog.Default()}, done
}

// eventually polls cond until it holds or the deadline passes.
func freed(n int) []events.Event {
	evs := make([]events.Event, n)
	for i := range evs {
		evs[i] = events.Event{Pool: tokens.DefaultPool, Kind: events.KindUnblocked, Token: fmt.Sprintf("freed-%d", i)}
	}
	return evs
}

type waitResult struct {
	i     int
	lease tokens.Lease
	err   error
}

// Two tokens freed for five waiters wake the first two, in arrival order,
// and no one else goes to the database.
func TestWaiterFIFOWithoutStampede(t *testing.T) {
	t.Parallel()
	f := &fakeAssigner{}
	w, _ := newTestWaiter(f)
	results := make(chan waitResult, 5)
	for i := range 5 {
		go func() {
			l, err := w.AssignWait(context.Background(), tokens.AssignRequest{}, 3*time.Second)
			results <- waitResult{i, l, err}
		}()
		wait.Eventually(t, 5*time.Second, "the waiter to sleep", func() bool { return w.Asleep() == i+1 })
	}
	f.add(2)
	w.observe(freed(2))
	var got []int
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Fatalf("waiter %d: %v", r.i, r.err)
		}
		got = append(got, r.i)
	}
	if !(got[0] == 0 && got[1] == 1 || got[0] == 1 && got[1] == 0) {
		t.Fatalf("woken waiters %v, want the first two (0 and 1)", got)
	}
	if assigns, _ := f.counts(); assigns != 3 {
		t.Fatalf("%d claims, want 1 first attempt (the others queue behind it) + 2 after the wake-up", assigns)
	}
	for range 3 {
		if r := <-results; !errors.Is(r.err, tokens.ErrNoFreeToken) {
			t.Fatalf("waiter %d: %v, want no free token after the wait", r.i, r.err)
		}
	}
	if w.queueOf("").len() != 0 {
		t.Fatal("waiters left in the queue")
	}
}

// A bad request is refused at once, even when it would queue behind others.
func TestWaiterRefusesBadRequestAtOnce(t *testing.T) {
	t.Parallel()
	w, _ := newTestWaiter(&fakeAssigner{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.AssignWait(ctx, tokens.AssignRequest{}, time.Minute) //nolint:errcheck // ends with the test
	wait.Eventually(t, 5*time.Second, "a waiter to sleep", func() bool { return w.Asleep() == 1 })
	start := time.Now()
	_, err := w.AssignWait(context.Background(), tokens.AssignRequest{Holder: "bad"}, time.Minute)
	if !errors.Is(err, tokens.ErrInvalidRequest) || time.Since(start) > 5*time.Second {
		t.Fatalf("AssignWait: %v after %s", err, time.Since(start))
	}
}

// A token freed while the only waiter is still making its first claim is
// kept as a spare: the waiter retries at once instead of sleeping.
func TestWaiterSpareWakeUp(t *testing.T) {
	t.Parallel()
	f := &fakeAssigner{}
	inClaim, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.hold = func(context.Context) {
		once.Do(func() {
			close(inClaim)
			<-release
		})
	}
	w, _ := newTestWaiter(f)
	res := make(chan waitResult, 1)
	go func() {
		l, err := w.AssignWait(context.Background(), tokens.AssignRequest{}, time.Minute)
		res <- waitResult{lease: l, err: err}
	}()
	<-inClaim
	w.observe(freed(1)) // the first claim has not seen this token
	close(release)      // ... and finds nothing
	f.add(1)
	select {
	case r := <-res:
		if r.err != nil {
			t.Fatal(r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a token freed during the first claim was lost")
	}
}

// A ring the log cannot show yet (rang) sends the first sleeping waiter to
// the database; each success passes the probe on, and the first failure ends
// it: two tokens freed for four waiters cost three claims, in arrival order.
func TestWaiterHeldRingProbesInOrder(t *testing.T) {
	t.Parallel()
	f := &fakeAssigner{}
	w, _ := newTestWaiter(f)
	results := make(chan waitResult, 4)
	for i := range 4 {
		go func() {
			l, err := w.AssignWait(context.Background(), tokens.AssignRequest{}, 3*time.Second)
			results <- waitResult{i, l, err}
		}()
		wait.Eventually(t, 5*time.Second, "the waiter to sleep", func() bool { return w.Asleep() == i+1 })
	}
	before, _ := f.counts()
	f.add(2)
	w.rang()
	leases := map[int]int64{} // waiter -> lease id, which counts up in claim order
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Fatalf("waiter %d: %v", r.i, r.err)
		}
		leases[r.i] = r.lease.LeaseID
	}
	if len(leases) != 2 || leases[0] == 0 || leases[1] == 0 || leases[0] > leases[1] {
		t.Fatalf("served waiters (waiter: lease) %v, want waiter 0 then waiter 1", leases)
	}
	wait.Eventually(t, 5*time.Second, "the probe to end", func() bool { return w.Asleep() == 2 })
	if after, _ := f.counts(); after-before != 3 {
		t.Fatalf("%d claims after the ring, want 3 (two served, one found nothing)", after-before)
	}
	for range 2 {
		if r := <-results; !errors.Is(r.err, tokens.ErrNoFreeToken) {
			t.Fatalf("waiter %d: %v, want no free token after the wait", r.i, r.err)
		}
	}
}

// A client that goes away while its claim is under way gets no lease: the
// claim completes and its lease is released at once.
func TestWaiterDisconnectReleasesLease(t *testing.T) {
	t.Parallel()
	f := &fakeAssigner{free: 1}
	ctx, cancel := context.WithCancel(context.Background())
	f.hold = func(claimCtx context.Context) {
		cancel() // the client disconnects mid-claim
		if claimCtx.Err() != nil {
			t.Error("the claim must not be cancelled with the client")
		}
	}
	w, _ := newTestWaiter(f)
	_, err := w.AssignWait(ctx, tokens.AssignRequest{}, time.Minute)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("AssignWait: %v, want context.Canceled", err)
	}
	if _, unblocks := f.counts(); len(unblocks) != 1 || unblocks[0] != 1 {
		t.Fatalf("unblocks %v, want the claimed lease 1 released", unblocks)
	}
}

// A waiter whose client disconnects while asleep leaves the queue and
// claims nothing.
func TestWaiterDisconnectWhileWaiting(t *testing.T) {
	t.Parallel()
	f := &fakeAssigner{}
	w, _ := newTestWaiter(f)
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := w.AssignWait(ctx, tokens.AssignRequest{}, time.Minute)
		res <- err
	}()
	wait.Eventually(t, 5*time.Second, "the waiter to sleep", func() bool { return w.Asleep() == 1 })
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("AssignWait: %v", err)
	}
	f.add(1)
	w.observe(freed(1)) // nobody is left to wake
	if assigns, _ := f.counts(); assigns != 1 || w.queueOf("").len() != 0 {
		t.Fatalf("%d claims and %d waiters after the client left", assigns, w.queueOf("").len())
	}
}

// Shutdown answers sleeping waiters with ErrUnavailable.
func TestWaiterShutdown(t *testing.T) {
	t.Parallel()
	w, done := newTestWaiter(&fakeAssigner{})
	res := make(chan error, 1)
	go func() {
		_, err := w.AssignWait(context.Background(), tokens.AssignRequest{}, time.Minute)
		res <- err
	}()
	wait.Eventually(t, 5*time.Second, "the waiter to sleep", func() bool { return w.Asleep() == 1 })
	close(done)
	if err := <-res; !errors.Is(err, tokens.ErrUnavailable) {
		t.Fatalf("AssignWait after shutdown: %v", err)
	}
	// After shutdown nobody waits: a claim that finds nothing is unavailable.
	if _, err := w.AssignWait(context.Background(), tokens.AssignRequest{}, time.Minute); !errors.Is(err, tokens.ErrUnavailable) {
		t.Fatalf("AssignWait on a closed waiter: %v", err)
	}
}

// A wake-up given to a waiter that leaves without using it passes on.
func TestWaitQueuePassesUnusedWakeUp(t *testing.T) {
	t.Parallel()
	var q waitQueue
	a, claimA := q.join()
	b, claimB := q.join()
	if !claimA || claimB {
		t.Fatal("the first waiter claims at once, the second queues behind it")
	}
	if q.idle(a) {
		t.Fatal("no spare expected")
	}
	q.wakeUp(1)
	if len(a.wake) != 1 || len(b.wake) != 0 {
		t.Fatal("the oldest waiter must be woken first")
	}
	q.leave(a)
	if len(b.wake) != 1 {
		t.Fatal("the unused wake-up did not pass to the next waiter")
	}
	// More tokens than idle waiters: the rest are spare, at most one per waiter.
	<-b.wake
	q.wakeUp(5)
	if q.spare != 1 || !q.idle(b) || q.idle(b) {
		t.Fatalf("spare %d, want 1 consumed by the next failed claim", q.spare)
	}
	q.leave(b)
	if q.spare != 0 || q.len() != 0 {
		t.Fatal("an empty queue keeps no spares")
	}

	// A newcomer takes a spare and claims at once instead of sleeping.
	c, _ := q.join()
	q.wakeUp(1) // c is busy: a spare
	d, claimD := q.join()
	if !claimD || q.spare != 0 {
		t.Fatal("a newcomer must take the spare and claim at once")
	}
	q.leave(c)
	q.leave(d)
}
