package tokens

import (
	"context"
	"fmt"

	"github.com/tokenlease/tokenlease/db"
)

// SweepLapsedLeases tidies up to batchSize lapsed leases, earliest first: it
// frees those of live tokens (audit `released`) and deletes the dead tokens
// it meets (audit `expired`). It returns how many rows it tidied. Claims take
// lapsed tokens without it; the sweep keeps counters honest and emits the
// events that wake waiters.
func (s *Service) SweepLapsedLeases(ctx context.Context, batchSize int) (int, error) {
	r, err := s.q.SweepLapsedLeases(ctx, db.SweepLapsedLeasesParams{
		BatchSize: int32(batchSize), Pod: s.settings.Pod, Slot: sweepSlot,
	})
	if err != nil {
		return 0, fmt.Errorf("tokens: sweep lapsed leases: %w", err)
	}
	n := int(r.Freed + r.Expired)
	if n > 0 {
		s.changed()
	}
	return n, nil
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
