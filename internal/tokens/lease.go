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
// defaults.
type AssignRequest struct {
	Holder string
	TTL    time.Duration
}

// ValidateAssign checks an assign request as Assign does, without assigning
// anything: for callers that queue a request before they assign (the
// long-poll), so that a bad request is refused at once.
func (s *Service) ValidateAssign(req AssignRequest) error {
	if req.Holder != "" {
		if err := ValidateHolder(req.Holder); err != nil {
			return err
		}
	}
	if req.TTL != 0 && (req.TTL < MinLeaseTTL || req.TTL > s.settings.MaxLeaseTTL) {
		return invalid("ttl must lie between %s and %s", MinLeaseTTL, s.settings.MaxLeaseTTL)
	}
	return nil
}

// Assign leases a random free token in one statement (ClaimRandomFree); with
// batching on, concurrent assigns of this pod share one (ClaimBatch).
func (s *Service) Assign(ctx context.Context, req AssignRequest) (Lease, error) {
	if err := s.ValidateAssign(req); err != nil {
		return Lease{}, err
	}
	if req.TTL == 0 {
		req.TTL = s.settings.LeaseTTL
	}
	if s.assigns != nil {
		return s.assigns.do(ctx, req)
	}
	return s.claimOne(ctx, req)
}

// claimAttempts is how many claim statements an assign may take before it
// answers no_free_token. A claim sees free tokens as of its statement's
// snapshot and re-checks each row it locks on the row's newest version; a
// token claimed and released (with a new sort key) since the snapshot fails
// that re-check and is skipped. Under heavy churn on a small pool one
// statement can therefore miss every free token; a second statement, with a
// fresh snapshot, settles it. An empty pool costs two statements, not one.
const claimAttempts = 2

// claimOne assigns one token; req.TTL is set.
func (s *Service) claimOne(ctx context.Context, req AssignRequest) (Lease, error) {
	var holder *string
	if req.Holder != "" {
		holder = &req.Holder
	}
	var row db.ClaimRandomFreeRow
	err := pgx.ErrNoRows
	for attempt := 0; attempt < claimAttempts && errors.Is(err, pgx.ErrNoRows); attempt++ {
		row, err = s.q.ClaimRandomFree(ctx, db.ClaimRandomFreeParams{
			Probe:      rand.Float64(),
			LeaseTtlMs: millis(req.TTL),
			Holder:     holder,
			Pod:        s.settings.Pod,
			Slot:       randomSlot(),
		})
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, ErrNoFreeToken
	}
	if err != nil {
		return Lease{}, fmt.Errorf("tokens: assign: %w", err)
	}
	s.changed()
	l := Lease{Token: row.Value, LeaseID: row.LeaseID, LeaseExpiresAt: row.LeaseExpiresAt, AliveUntil: row.AliveUntil}
	if row.Holder != nil {
		l.Holder = *row.Holder
	}
	return l, nil
}

// Unblock releases the live lease on token. With leaseID it releases only
// that lease (ErrLeaseMismatch otherwise); without, whatever lease is live.
// With batching on, concurrent unblocks of this pod share one statement.
func (s *Service) Unblock(ctx context.Context, token string, leaseID *int64) error {
	if err := validateRef(token, leaseID); err != nil {
		return err
	}
	if s.unblocks != nil {
		_, err := s.unblocks.do(ctx, leaseRef{token: token, leaseID: leaseID})
		return err
	}
	return s.unblockOne(ctx, token, leaseID)
}

func (s *Service) unblockOne(ctx context.Context, token string, leaseID *int64) error {
	row, err := s.q.ReleaseLease(ctx, db.ReleaseLeaseParams{
		Token: token, LeaseID: leaseID, Pod: s.settings.Pod, Slot: randomSlot(),
	})
	if err != nil {
		return notFoundIfNoRows(err)
	}
	switch {
	case row.Released:
		s.changed()
		return nil
	case !row.HasLiveLease:
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

// KeepAlive extends the token's life; with the live lease's id it also renews
// that lease by its own TTL.
func (s *Service) KeepAlive(ctx context.Context, token string, leaseID *int64) (TokenState, error) {
	if err := validateRef(token, leaseID); err != nil {
		return TokenState{}, err
	}
	if s.keepAlives != nil {
		return s.keepAlives.do(ctx, leaseRef{token: token, leaseID: leaseID})
	}
	return s.keepAliveOne(ctx, token, leaseID)
}

func (s *Service) keepAliveOne(ctx context.Context, token string, leaseID *int64) (TokenState, error) {
	row, err := s.q.KeepAlive(ctx, db.KeepAliveParams{
		Token: token, KeepaliveTtlMs: millis(s.settings.KeepaliveTTL), LeaseID: leaseID, Pod: s.settings.Pod,
	})
	if err != nil {
		return TokenState{}, notFoundIfNoRows(err)
	}
	st, err := keptState(row.Value, row.Updated, row.HasLiveLease, row.AliveUntil, row.LeaseID, row.LeaseExpiresAt, row.Holder)
	if err == nil {
		s.changed()
	}
	return st, err
}

// keptState turns what a keep-alive statement returned for one token into
// its answer: the token's state, or ErrLeaseMismatch when nothing was kept.
func keptState(token string, updated, hasLiveLease bool, aliveUntil *time.Time, leaseID *int64, leaseExpiresAt *time.Time, holder *string) (TokenState, error) {
	if !updated || aliveUntil == nil {
		return TokenState{}, ErrLeaseMismatch
	}
	st := TokenState{Token: token, Assigned: hasLiveLease, AliveUntil: *aliveUntil}
	if hasLiveLease {
		st.LeaseID, st.LeaseExpiresAt, st.Holder = leaseID, leaseExpiresAt, holder
	}
	return st, nil
}

func validateRef(token string, leaseID *int64) error {
	if err := ValidateValue(token); err != nil {
		return err
	}
	if leaseID != nil {
		return ValidateLeaseID(*leaseID)
	}
	return nil
}
