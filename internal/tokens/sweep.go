package tokens

import (
	"context"
	"fmt"

	"github.com/tokenlease/tokenlease/db"
)

// SweepLapsedLeases frees up to batchSize lapsed leases (audit `released`)
// and returns how many it freed. Claims take lapsed tokens without it; the
// sweep keeps counters honest and emits the events that wake waiters.
func (s *Service) SweepLapsedLeases(ctx context.Context, batchSize int) (int, error) {
	n, err := s.q.SweepLapsedLeases(ctx, db.SweepLapsedLeasesParams{
		BatchSize: int32(batchSize), Pod: s.settings.Pod, Slot: sweepSlot,
	})
	if err != nil {
		return 0, fmt.Errorf("tokens: sweep lapsed leases: %w", err)
	}
	if n > 0 {
		s.changed()
	}
	return int(n), nil
}

// SweepDeadTokens deletes up to batchSize tokens past alive_until (audit
// `expired`) and returns how many it deleted.
func (s *Service) SweepDeadTokens(ctx context.Context, batchSize int) (int, error) {
	n, err := s.q.SweepDeadTokens(ctx, db.SweepDeadTokensParams{
		BatchSize: int32(batchSize), Pod: s.settings.Pod, Slot: sweepSlot,
	})
	if err != nil {
		return 0, fmt.Errorf("tokens: sweep dead tokens: %w", err)
	}
	if n > 0 {
		s.changed()
	}
	return int(n), nil
}
