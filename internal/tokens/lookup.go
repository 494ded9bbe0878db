package tokens

import (
	"context"
	"fmt"

	"github.com/tokenlease/tokenlease/db"
)

// Get returns a live token of pool; unknown, deleted and dead tokens are
// ErrNotFound. A caller limited to its own leases (role client) may look up
// only the tokens it holds: a free token, or one under another actor's live
// lease, is ErrForbidden (DESIGN section 8).
func (s *Service) Get(ctx context.Context, pool, token string) (TokenState, error) {
	ref, err := s.resolve(ctx, pool)
	if err != nil {
		return TokenState{}, err
	}
	if err := ValidateValue(token); err != nil {
		return TokenState{}, err
	}
	row, err := s.q.GetToken(ctx, db.GetTokenParams{PoolID: ref.id, Token: token})
	if err != nil {
		return TokenState{}, notFoundIfNoRows(err)
	}
	if c := callerOf(ctx); c.OwnLeasesOnly && (!row.HasLiveLease || row.LeaseActor == nil || *row.LeaseActor != c.Actor) {
		return TokenState{}, fmt.Errorf("%w: a client may look up only the tokens it holds", ErrForbidden)
	}
	st := TokenState{Token: row.Value, Assigned: row.HasLiveLease, AliveUntil: row.AliveUntil, CreatedAt: row.CreatedAt}
	if row.HasLiveLease {
		st.LeaseID, st.LeaseExpiresAt, st.Holder = row.LeaseID, row.LeaseExpiresAt, row.Holder
	}
	return st, nil
}

// Stats are the pool's counts. They are kept by counters that every change
// adjusts in its own statement; a lease that has lapsed, or a token that has
// died, is counted as it was until the sweep tidies it (at most about one
// SWEEP_INTERVAL later).
type Stats struct {
	Free, Assigned, Total int64
}

// Stats sums the pool's counter slots; its cost does not grow with the pool.
func (s *Service) Stats(ctx context.Context, pool string) (Stats, error) {
	ref, err := s.resolve(ctx, pool)
	if err != nil {
		return Stats{}, err
	}
	return s.poolStats(ctx, ref)
}
