package longpoll

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/tokenlease/tokenlease/internal/events"
	"github.com/tokenlease/tokenlease/internal/metrics"
	"github.com/tokenlease/tokenlease/internal/tokens"
)

// Assigner is what the long-poll needs of the domain: *tokens.Service.
type Assigner interface {
	ValidateAssign(ctx context.Context, req tokens.AssignRequest) error
	Assign(ctx context.Context, req tokens.AssignRequest) (tokens.Lease, error)
	Unblock(ctx context.Context, pool, token string, leaseID *int64) error
}

// Changes is what the long-poll needs of the events layer: *events.Bus.
type Changes interface {
	Observe(f func([]events.Event), interested func() bool)
	ObserveHeldRings(f func())
	Kick()
	Done() <-chan struct{}
}

// Waiter serves assign?wait= (httpapi.Waiter): when no token is free it waits
// for the change log to show one freed, on any pod, and assigns it.
//
//   - Waiters wait per pool: a token freed in one pool wakes only waiters of
//     that pool, and a waiter only ever assigns in its own pool.
//   - Waiters of one pod and pool are served first come, first served (a newcomer
//     does not assign ahead of those already waiting), and a wake-up wakes
//     only as many waiters as tokens were freed (waitQueue).
//   - While the log is held back, a ring it cannot show wakes the first
//     waiter to claim as a probe, passed on after each success (rang).
//   - The assign runs to completion even if the client goes away meanwhile,
//     and a lease taken for a client that has gone is released at once: a
//     disconnected waiter never holds a lease.
//   - After the wait, one last assign is tried (a lease may have lapsed
//     without a sweep yet); then ErrNoFreeToken.
//   - When the pod shuts down, waiters get ErrUnavailable, or the result of
//     the assign they are making.
type Waiter struct {
	svc    Assigner
	wake   func() // asks the events layer to catch up; nil in unit tests
	done   <-chan struct{}
	logger *slog.Logger

	mu     sync.Mutex
	queues map[string]*waitQueue // by pool name
}

// assignTimeout bounds one assign made on a waiter's behalf, which does not
// stop when the client goes away.
const assignTimeout = 10 * time.Second

// New returns the long-poll of one pod: it assigns through svc and wakes on
// the changes the events layer reads.
func New(changes Changes, svc Assigner, logger *slog.Logger) *Waiter {
	if logger == nil {
		logger = slog.Default()
	}
	w := &Waiter{svc: svc, wake: changes.Kick, done: changes.Done(), logger: logger}
	changes.Observe(w.observe, func() bool { return w.Waiting() > 0 })
	changes.ObserveHeldRings(w.rang)
	return w
}

// Waiting returns how many assigns wait for a token, in every pool.
func (w *Waiter) Waiting() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, q := range w.queues {
		n += q.len()
	}
	return n
}

// queueOf returns the wait queue of pool, making it at its first use.
func (w *Waiter) queueOf(pool string) *waitQueue {
	if pool == "" {
		pool = tokens.DefaultPool
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queues[pool]
	if q == nil {
		if w.queues == nil {
			w.queues = map[string]*waitQueue{}
		}
		q = &waitQueue{}
		w.queues[pool] = q
	}
	return q
}

// Asleep returns how many waiting assigns, over every pool, have found no
// token and wait for a wake-up (the others are assigning now).
func (w *Waiter) Asleep() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, q := range w.queues {
		n += q.asleep()
	}
	return n
}

// observe is the events layer's call with each batch of events: in each
// pool, it wakes one waiter of that pool per token freed there. It never
// blocks.
func (w *Waiter) observe(batch []events.Event) {
	if w.Waiting() == 0 {
		return
	}
	for pool, n := range freedIn(batch) {
		w.mu.Lock()
		q := w.queues[pool]
		w.mu.Unlock()
		if q != nil {
			q.wakeUp(n)
		}
	}
}

// rang is the events layer's call when the doorbell rang but the log is held
// back (a transaction open elsewhere), so the events that would say which
// tokens were freed cannot be read yet: the first idle waiter retries its
// assign, and the database says whether a token is free. It never blocks.
func (w *Waiter) rang() {
	// A ring does not say which pool changed: every pool with waiters
	// probes.
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, q := range w.queues {
		if q.len() > 0 {
			q.poke()
		}
	}
}

// AssignWait implements httpapi.Waiter.
func (w *Waiter) AssignWait(ctx context.Context, req tokens.AssignRequest, wait time.Duration) (tokens.Lease, error) {
	if wait <= 0 {
		return w.assign(ctx, req)
	}
	if err := w.svc.ValidateAssign(ctx, req); err != nil {
		return tokens.Lease{}, err // refused at once, even behind other waiters
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	queue := w.queueOf(req.Pool)
	me, assignNow := queue.join()
	defer queue.leave(me)
	// The gauge counts assigns that wait: not the first attempt, which may
	// be served at once (the alert on waiters piling up must not fire for
	// busy but healthy wait-assign traffic).
	waiting, counted := metrics.Waiters(cmp.Or(req.Pool, tokens.DefaultPool)), false
	defer func() {
		if counted {
			waiting.Dec()
		}
	}()
	if w.wake != nil {
		w.wake() // the reader may idle behind the head while nobody waits
	}
	for {
		if assignNow {
			lease, err := w.assign(ctx, req)
			if !errors.Is(err, tokens.ErrNoFreeToken) {
				return lease, err
			}
			if w.closed() {
				return tokens.Lease{}, tokens.ErrUnavailable
			}
			if queue.idle(me) {
				continue
			}
		}
		assignNow = true
		if !counted {
			waiting.Inc()
			counted = true
		}
		select {
		case <-me.wake:
		case <-deadline.C:
			return w.assign(ctx, req)
		case <-ctx.Done():
			return tokens.Lease{}, ctx.Err()
		case <-w.done:
			return tokens.Lease{}, tokens.ErrUnavailable
		}
	}
}

func (w *Waiter) closed() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// assign assigns a token for a client whose request context is ctx. The
// statement itself is not cancelled with ctx (a cancelled statement may
// still have committed, and its lease would be lost until its TTL); instead,
// a lease taken for a client that has gone is released at once.
func (w *Waiter) assign(ctx context.Context, req tokens.AssignRequest) (tokens.Lease, error) {
	if err := ctx.Err(); err != nil {
		return tokens.Lease{}, err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), assignTimeout)
	defer cancel()
	lease, err := w.svc.Assign(cctx, req)
	if err != nil {
		return tokens.Lease{}, err
	}
	if ctx.Err() != nil {
		id := lease.LeaseID
		if uerr := w.svc.Unblock(cctx, req.Pool, lease.Token, &id); uerr != nil {
			w.logger.Warn("longpoll: cannot release the lease of a client that went away; it lapses by its TTL",
				"lease_id", id, "error", uerr)
		}
		return tokens.Lease{}, ctx.Err()
	}
	return lease, nil
}
