package tokens

import (
	"context"
)

// Get returns a live token; unknown, deleted and dead tokens are ErrNotFound.
func (s *Service) Get(ctx context.Context, token string) (TokenState, error) {
	if err := ValidateValue(token); err != nil {
		return TokenState{}, err
	}
	row, err := s.q.GetToken(ctx, token)
	if err != nil {
		return TokenState{}, notFoundIfNoRows(err)
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

// Stats sums the counter slots; its cost does not grow with the pool.
func (s *Service) Stats(ctx context.Context) (Stats, error) {
	row, err := s.q.PoolStats(ctx)
	if err != nil {
		return Stats{}, storageError("stats", err)
	}
	return Stats{Free: row.Total - row.Assigned, Assigned: row.Assigned, Total: row.Total}, nil
}
