package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrLeaseLost is the cause (Lease.Err) of a lease that was lost: refused
// by the server, or not renewed before its local deadline.
var ErrLeaseLost = errors.New("tokenlease: lease lost")

// ErrLeaseReleased is the cause (Lease.Err) of a lease ended by Release.
var ErrLeaseReleased = errors.New("tokenlease: lease released")

// DefaultLeaseTTL is the lease length Acquire asks for when
// AcquireOptions.TTL is zero (the contract's LEASE_TTL default).
const DefaultLeaseTTL = 60 * time.Second

// AcquireOptions shape Acquire.
type AcquireOptions struct {
	Holder string        // who takes the lease (recorded in the audit trail)
	TTL    time.Duration // lease length; default DefaultLeaseTTL. Always sent.
	Wait   time.Duration // wait up to this long for a free token (max 60s)
	// RenewFraction of the TTL after each renewal's send time at which the
	// next renewal is sent; default 1/3, in (0, 1).
	RenewFraction float64
	// SafetyMargin is how long before the lease could lapse on the server
	// the lease is declared lost locally; default max(TTL/10, 100ms),
	// capped at half the time between a renewal and the deadline.
	SafetyMargin time.Duration
}

func (o *AcquireOptions) defaults() error {
	if o.TTL == 0 {
		o.TTL = DefaultLeaseTTL
	}
	if o.RenewFraction == 0 {
		o.RenewFraction = 1.0 / 3
	}
	if o.TTL < 0 || o.RenewFraction <= 0 || o.RenewFraction >= 1 || o.SafetyMargin < 0 {
		return fmt.Errorf("%w: AcquireOptions: TTL, RenewFraction (0..1) and SafetyMargin must be positive", ErrInvalidRequest)
	}
	slack := time.Duration(float64(o.TTL) * (1 - o.RenewFraction))
	if o.SafetyMargin == 0 {
		o.SafetyMargin = min(max(o.TTL/10, 100*time.Millisecond), slack/2)
	}
	if o.SafetyMargin >= slack {
		return fmt.Errorf("%w: AcquireOptions: SafetyMargin %s leaves no time to renew (TTL %s, RenewFraction %.2f)",
			ErrInvalidRequest, o.SafetyMargin, o.TTL, o.RenewFraction)
	}
	return nil
}

// Lease is a token held under a lease that renews itself until Release or
// loss. See the package documentation for its guarantees.
type Lease struct {
	c        *Client
	pool     string
	a        Assignment
	ttl      time.Duration
	margin   time.Duration
	every    time.Duration // renewal interval
	ctx      context.Context
	cancel   context.CancelCauseFunc
	loopDone chan struct{}

	mu       sync.Mutex
	deadline time.Time // local, monotonic: the last renewal's send time + ttl - margin
	expires  time.Time // the server's lease_expires_at, for display only
	lastErr  error     // the last failed renewal's error
	watchdog *time.Timer
}

// Acquire leases a free token of pool (waiting up to o.Wait for one) and
// keeps the lease alive until Release, loss, or the process ends. ctx
// bounds the acquisition only; the lease's Context keeps ctx's values but
// not its cancellation.
func (c *Client) Acquire(ctx context.Context, pool string, o AcquireOptions) (*Lease, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	sent := time.Now()
	a, err := c.Assign(ctx, pool, AssignOptions{Holder: o.Holder, TTL: o.TTL, Wait: o.Wait})
	if err != nil {
		return nil, err
	}
	l := &Lease{
		c: c, pool: pool, a: a, ttl: o.TTL, margin: o.SafetyMargin,
		every:    time.Duration(float64(o.TTL) * o.RenewFraction),
		loopDone: make(chan struct{}),
		expires:  a.LeaseExpiresAt,
	}
	l.ctx, l.cancel = context.WithCancelCause(context.WithoutCancel(ctx))
	// The server claimed the token at some moment between sent and now; a
	// long wait makes that moment uncertain, so renew at once to know.
	if time.Since(sent) > l.every/2 {
		sent = time.Now()
		info, err := c.keepAlive(ctx, pool, a.Token, a.LeaseID, 0)
		if err != nil {
			l.cancel(err)
			// Give the token back rather than hold it unused until its TTL
			// (fenced: harmless if the lease is already gone).
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
			defer cancel()
			_ = c.Unblock(rctx, pool, a.Token, a.LeaseID)
			return nil, fmt.Errorf("tokenlease: renew the lease just acquired: %w", err)
		}
		l.expires = info.LeaseExpiresAt
	}
	l.deadline = sent.Add(l.ttl - l.margin)
	l.watchdog = time.AfterFunc(time.Until(l.deadline), l.checkDeadline)
	go l.renewLoop(sent)
	return l, nil
}

// Token is the leased value.
func (l *Lease) Token() string { return l.a.Token }

// LeaseID is the lease's fencing token: pass it to downstream systems so
// that they can refuse writes of an older lease.
func (l *Lease) LeaseID() int64 { return l.a.LeaseID }

// Pool is the pool the token belongs to.
func (l *Lease) Pool() string { return l.pool }

// Done is closed when the lease is lost or released; stop the work then.
func (l *Lease) Done() <-chan struct{} { return l.ctx.Done() }

// Context is cancelled when Done is closed; its cause is Err.
func (l *Lease) Context() context.Context { return l.ctx }

// Err is nil while the lease is held; afterwards why it ended: an error
// matching ErrLeaseLost (with the server's refusal, e.g. ErrLeaseMismatch,
// or the last renewal error) or ErrLeaseReleased.
func (l *Lease) Err() error {
	if l.ctx.Err() == nil {
		return nil
	}
	return context.Cause(l.ctx)
}

// Deadline is the local time (monotonic clock) at which the lease will be
// declared lost unless renewed before.
func (l *Lease) Deadline() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadline
}

// ExpiresAt is the server's lease_expires_at of the last renewal, by the
// server's clock: for display; the lease never compares it with local time.
func (l *Lease) ExpiresAt() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

// Release stops the renewals, closes Done, and frees the token with the
// lease id (fenced: it can never free a later holder's lease). It returns
// nil once the server no longer holds the lease for us, including when it
// had already lapsed or been taken; an error means the server could not be
// told, and the lease lapses at its TTL.
func (l *Lease) Release(ctx context.Context) error {
	l.end(ErrLeaseReleased)
	<-l.loopDone
	err := l.c.Unblock(ctx, l.pool, l.a.Token, l.a.LeaseID)
	if errors.Is(err, ErrNotAssigned) || errors.Is(err, ErrLeaseMismatch) || errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// end records why the lease ended; the first cause wins.
func (l *Lease) end(cause error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.watchdog.Stop()
	l.cancel(cause)
}

// checkDeadline runs when the watchdog fires: unless a renewal moved the
// deadline meanwhile (and re-armed the watchdog), the lease is lost.
func (l *Lease) checkDeadline() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Now().Before(l.deadline) || l.ctx.Err() != nil {
		return
	}
	err := fmt.Errorf("%w: not renewed within its TTL %s minus a safety margin of %s", ErrLeaseLost, l.ttl, l.margin)
	if l.lastErr != nil {
		err = fmt.Errorf("%w (last renewal error: %w)", err, l.lastErr)
	}
	l.cancel(err)
}

// renewed moves the deadline after a renewal sent at sent succeeded.
func (l *Lease) renewed(sent time.Time, info TokenInfo) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx.Err() != nil {
		return // lost meanwhile: a loss is final
	}
	l.deadline = sent.Add(l.ttl - l.margin)
	l.expires = info.LeaseExpiresAt
	l.lastErr = nil
	l.watchdog.Reset(time.Until(l.deadline))
}

func (l *Lease) renewLoop(sent time.Time) {
	defer close(l.loopDone)
	bo := newBackoff()
	bo.InitialInterval = max(l.every/10, 10*time.Millisecond)
	bo.MaxInterval = max(l.every/2, bo.InitialInterval)
	timer := time.NewTimer(time.Until(sent.Add(l.every)))
	defer timer.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-timer.C:
		}
		sent := time.Now()
		deadline := l.Deadline()
		remaining := time.Until(deadline)
		if remaining <= 0 {
			continue // the watchdog is closing Done
		}
		// Each attempt may take half the time left, so that a stalled pod
		// leaves time to fail over to another base URL.
		actx, cancel := context.WithDeadline(l.ctx, deadline)
		info, err := l.c.keepAlive(actx, l.pool, l.a.Token, l.a.LeaseID, max(remaining/2, time.Millisecond))
		cancel()
		switch {
		case err == nil:
			l.renewed(sent, info)
			bo.Reset()
			timer.Reset(time.Until(sent.Add(l.every)))
		case errors.Is(err, ErrLeaseMismatch), errors.Is(err, ErrNotFound), errors.Is(err, ErrNotAssigned):
			l.end(fmt.Errorf("%w: renewal refused: %w", ErrLeaseLost, err))
			return
		default:
			l.mu.Lock()
			l.lastErr = err
			l.mu.Unlock()
			timer.Reset(bo.NextBackOff())
		}
	}
}
