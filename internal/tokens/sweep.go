package tokens

import (
	"context"

	"github.com/tokenlease/tokenlease/db"
)

// SweepLapsedLeases tidies up to batchSize lapsed leases in each pool,
// earliest first: it frees those of live tokens (audit `released`) and
// deletes the dead tokens it meets (audit `expired`). It returns how many
// rows it tidied in the pool where it tidied most (a full batch there means
// more may wait). Claims take lapsed tokens
// without it; the sweep keeps counters honest and emits the events that
// wake waiters. Each pool is swept by its own statement, by its own index.
func (s *Service) SweepLapsedLeases(ctx context.Context, batchSize int) (int, error) {
	return s.sweepPools(ctx, "sweep lapsed leases", func(id int32) (int32, error) {
		r, err := s.q.SweepLapsedLeases(ctx, db.SweepLapsedLeasesParams{
			PoolID: id, BatchSize: int32(batchSize), Pod: s.settings.Pod, Slot: sweepSlot,
		})
		return r.Freed + r.Expired, err
	})
}

// SweepDeadTokens deletes up to batchSize tokens past alive_until in each
// pool (audit `expired`) and returns the most it deleted in one pool.
func (s *Service) SweepDeadTokens(ctx context.Context, batchSize int) (int, error) {
	return s.sweepPools(ctx, "sweep dead tokens", func(id int32) (int32, error) {
		return s.q.SweepDeadTokens(ctx, db.SweepDeadTokensParams{
			PoolID: id, BatchSize: int32(batchSize), Pod: s.settings.Pod, Slot: sweepSlot,
		})
	})
}

// sweepPools runs sweep once for every live pool.
func (s *Service) sweepPools(ctx context.Context, what string, sweep func(poolID int32) (int32, error)) (int, error) {
	ids, err := s.q.SweptPools(ctx)
	if err != nil {
		return 0, storageError(what, err)
	}
	most, changed := 0, false
	for _, id := range ids {
		n, err := sweep(id)
		if err != nil {
			return most, storageError(what, err)
		}
		most, changed = max(most, int(n)), changed || n > 0
	}
	if changed {
		s.changed()
	}
	return most, nil
}
