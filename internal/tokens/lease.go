package tokens

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokenlease/tokenlease/db"
)

// Lease is a token handed to a client.
type Lease struct {
	Token          string
	LeaseID        int64
	LeaseExpiresAt time.Time
	AliveUntil     time.Time
	Holder         string // empty when the client named none
}

// AssignRequest is what a client may ask of an assign; zero values take the
// defaults (Pool "" is DefaultPool, TTL 0 the pool's lease TTL).
type AssignRequest struct {
	Pool   string
	Holder string
	TTL    time.Duration
}

// ValidateAssign checks an assign request as Assign does, without assigning
// anything: for callers that queue a request before they assign (the
// long-poll), so that a bad request or an unknown pool is refused at once.
func (s *Service) ValidateAssign(ctx context.Context, req AssignRequest) error {
	ref, err := s.resolve(ctx, req.Pool)
	if err != nil {
		return err
	}
	return validateAssignIn(ref, req)
}

func validateAssignIn(ref poolRef, req AssignRequest) error {
	if req.Holder != "" {
		if err := ValidateHolder(req.Holder); err != nil {
			return err
		}
	}
	if req.TTL != 0 && (req.TTL < MinLeaseTTL || req.TTL > ref.maxLeaseTTL) {
		return invalid("ttl must lie between %s and %s", MinLeaseTTL, ref.maxLeaseTTL)
	}
	return nil
}

// claimReq is an assign resolved against its pool and its caller.
type claimReq struct {
	ref    poolRef
	holder string
	ttl    time.Duration
	caller Caller
}

// Assign leases a random free token of the request's pool in one statement
// (ClaimRandomFree); with batching on, concurrent assigns of this pod in one
// pool share one (ClaimBatch).
func (s *Service) Assign(ctx context.Context, req AssignRequest) (Lease, error) {
	ref, err := s.resolve(ctx, req.Pool)
	if err != nil {
		return Lease{}, err
	}
	if err := validateAssignIn(ref, req); err != nil {
		return Lease{}, err
	}
	cr := claimReq{ref: ref, holder: req.Holder, ttl: req.TTL, caller: callerOf(ctx)}
	if cr.ttl == 0 {
		cr.ttl = ref.leaseTTL
	}
	if s.batching {
		return s.batchers.cycles.do(ctx, cycleReq{claim: cr})
	}
	return s.claimOne(ctx, cr)
}

// claimAttempts is how many claim statements an assign may take before it
// answers no_free_token. A claim sees free tokens as of its statement's
// snapshot and re-checks each row it locks on the row's newest version; a
// token claimed and released (with a new sort key) since the snapshot fails
// that re-check and is skipped. Under heavy churn on a small pool one
// statement can therefore miss every free token; a second statement, with a
// fresh snapshot, settles it. An empty pool costs two statements, not one.
const claimAttempts = 2

// claimOne assigns one token.
func (s *Service) claimOne(ctx context.Context, req claimReq) (Lease, error) {
	l, err := s.claimOnce(ctx, req)
	for attempt := 1; attempt < claimAttempts && errors.Is(err, pgx.ErrNoRows); attempt++ {
		l, err = s.claimOnce(ctx, req)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, ErrNoFreeToken
	}
	if err == nil {
		s.changed()
	}
	return l, err
}

// claimOnce runs one ClaimRandomFree: pgx.ErrNoRows when it found no token,
// a storage error when it failed.
func (s *Service) claimOnce(ctx context.Context, req claimReq) (Lease, error) {
	var holder *string
	if req.holder != "" {
		holder = &req.holder
	}
	row, err := s.q.ClaimRandomFree(ctx, db.ClaimRandomFreeParams{
		PoolID:     req.ref.id,
		Probe:      rand.Float64(),
		LeaseTtlMs: millis(req.ttl),
		Holder:     holder,
		Actor:      actorArg(req.caller),
		Pod:        s.settings.Pod,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, err
	}
	if err != nil {
		return Lease{}, storageError("assign", err)
	}
	l := Lease{Token: row.Value, LeaseID: row.LeaseID, LeaseExpiresAt: row.LeaseExpiresAt, AliveUntil: row.AliveUntil}
	if row.Holder != nil {
		l.Holder = *row.Holder
	}
	return l, nil
}

// leaseRef is an unblock or keep-alive request: a token of a pool and,
// optionally, the lease id it must name, made by caller.
type leaseRef struct {
	ref     poolRef
	token   string
	leaseID *int64
	caller  Caller
}

func (r leaseRef) key() string { return r.token }

// newLeaseRef validates and resolves an unblock or keep-alive request.
func (s *Service) newLeaseRef(ctx context.Context, pool, token string, leaseID *int64) (leaseRef, error) {
	ref, err := s.resolve(ctx, pool)
	if err != nil {
		return leaseRef{}, err
	}
	if err := ValidateValue(token); err != nil {
		return leaseRef{}, err
	}
	if leaseID != nil {
		if err := ValidateLeaseID(*leaseID); err != nil {
			return leaseRef{}, err
		}
	}
	return leaseRef{ref: ref, token: token, leaseID: leaseID, caller: callerOf(ctx)}, nil
}

// Unblock releases the live lease on token in pool. With leaseID it releases
// only that lease (ErrLeaseMismatch otherwise); without, whatever lease is
// live. A caller limited to its own leases gets ErrForbidden for another
// actor's live lease. With batching on, concurrent unblocks of this pod in
// one pool share one statement.
func (s *Service) Unblock(ctx context.Context, pool, token string, leaseID *int64) error {
	r, err := s.newLeaseRef(ctx, pool, token, leaseID)
	if err != nil {
		return err
	}
	if s.batching {
		_, err := s.batchers.cycles.do(ctx, cycleReq{unblock: true, ref: r})
		return err
	}
	return s.unblockOne(ctx, r)
}

func (s *Service) unblockOne(ctx context.Context, r leaseRef) error {
	row, err := s.q.ReleaseLease(ctx, db.ReleaseLeaseParams{
		PoolID: r.ref.id, Token: r.token, LeaseID: r.leaseID,
		OwnOnly: r.caller.OwnLeasesOnly, Actor: actorArg(r.caller),
		Pod: s.settings.Pod,
	})
	if err != nil {
		return notFoundIfNoRows(err)
	}
	err = releaseOutcome(row.Released, row.Forbidden, row.HasLiveLease)
	if err == nil {
		s.changed()
	}
	return err
}

// releaseOutcome turns what an unblock statement returned for one token into
// its answer.
func releaseOutcome(released, forbidden, hasLiveLease bool) error {
	switch {
	case released:
		return nil
	case forbidden:
		return fmt.Errorf("%w: the live lease on this token is another caller's", ErrForbidden)
	case !hasLiveLease:
		return ErrNotAssigned
	default:
		return ErrLeaseMismatch
	}
}

// TokenState is a live token as lookups and keep-alive show it. The lease
// fields are set only while a lease is live.
type TokenState struct {
	Token          string
	Assigned       bool
	AliveUntil     time.Time
	CreatedAt      time.Time // zero where the operation does not read it
	LeaseID        *int64
	LeaseExpiresAt *time.Time
	Holder         *string
}

// KeepAlive extends the life of token in pool by the pool's keep-alive TTL;
// with the live lease's id it also renews that lease by its own TTL.
func (s *Service) KeepAlive(ctx context.Context, pool, token string, leaseID *int64) (TokenState, error) {
	r, err := s.newLeaseRef(ctx, pool, token, leaseID)
	if err != nil {
		return TokenState{}, err
	}
	if s.batching {
		return s.batchers.keepAlives.do(ctx, r)
	}
	return s.keepAliveOne(ctx, r)
}

func (s *Service) keepAliveOne(ctx context.Context, r leaseRef) (TokenState, error) {
	row, err := s.q.KeepAlive(ctx, db.KeepAliveParams{
		PoolID: r.ref.id, Token: r.token, KeepaliveTtlMs: millis(r.ref.keepaliveTTL), LeaseID: r.leaseID,
		OwnOnly: r.caller.OwnLeasesOnly, Actor: actorArg(r.caller), Pod: s.settings.Pod,
	})
	if err != nil {
		return TokenState{}, notFoundIfNoRows(err)
	}
	st, err := keptState(row.Value, row.Updated, row.Forbidden, row.HasLiveLease, row.AliveUntil, row.LeaseID, row.LeaseExpiresAt, row.Holder)
	if err == nil {
		s.changed()
	}
	return st, err
}

// keptState turns what a keep-alive statement returned for one token into
// its answer: the token's state, ErrForbidden, or ErrLeaseMismatch when
// nothing was kept.
func keptState(token string, updated, forbidden, hasLiveLease bool, aliveUntil *time.Time, leaseID *int64, leaseExpiresAt *time.Time, holder *string) (TokenState, error) {
	if forbidden {
		return TokenState{}, fmt.Errorf("%w: the live lease on this token is another caller's", ErrForbidden)
	}
	if !updated || aliveUntil == nil {
		return TokenState{}, ErrLeaseMismatch
	}
	st := TokenState{Token: token, Assigned: hasLiveLease, AliveUntil: *aliveUntil}
	if hasLiveLease {
		st.LeaseID, st.LeaseExpiresAt, st.Holder = leaseID, leaseExpiresAt, holder
	}
	return st, nil
}
