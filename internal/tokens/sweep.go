package tokens

import (
	"context"

	"github.com/tokenlease/tokenlease/db"
)

// Swept is what one sweep call tidied.
type Swept struct {
	// Most is the most rows one pool's statement tidied: a full batch there
	// means more may wait.
	Most int
	// Pools are the counts by pool name, of the pools where it tidied any.
	Pools map[string]SweptCounts
}

// SweptCounts are the rows a sweep tidied in one pool.
type SweptCounts struct {
	Lapsed  int // leases freed after their TTL (audit `released`)
	Expired int // dead tokens deleted (audit `expired`)
}

// Add adds o's counts to s's, pool by pool.
func (s *Swept) Add(o Swept) {
	s.Most = max(s.Most, o.Most)
	for pool, c := range o.Pools {
		if s.Pools == nil {
			s.Pools = make(map[string]SweptCounts)
		}
		t := s.Pools[pool]
		t.Lapsed += c.Lapsed
		t.Expired += c.Expired
		s.Pools[pool] = t
	}
}

// SweepLapsedLeases tidies up to batchSize lapsed leases in each pool,
// earliest first: it frees those of live tokens (audit `released`) and
// deletes the dead tokens it meets (audit `expired`). Claims take lapsed
// tokens without it; the sweep keeps counters honest and emits the events
// that wake waiters. Each pool is swept by its own statement, by its own
// index.
func (s *Service) SweepLapsedLeases(ctx context.Context, batchSize int) (Swept, error) {
	return s.sweepPools(ctx, "sweep lapsed leases", func(id int32) (SweptCounts, error) {
		r, err := s.q.SweepLapsedLeases(ctx, db.SweepLapsedLeasesParams{
			PoolID: id, BatchSize: int32(batchSize), Pod: s.settings.Pod, Slot: sweepSlot,
		})
		return SweptCounts{Lapsed: int(r.Freed), Expired: int(r.Expired)}, err
	})
}

// SweepDeadTokens deletes up to batchSize tokens past alive_until in each
// pool (audit `expired`). It first folds the counter rows of exited
// backends (FoldCounterRows).
func (s *Service) SweepDeadTokens(ctx context.Context, batchSize int) (Swept, error) {
	if _, err := s.FoldCounterRows(ctx); err != nil {
		return Swept{}, err
	}
	return s.sweepPools(ctx, "sweep dead tokens", func(id int32) (SweptCounts, error) {
		n, err := s.q.SweepDeadTokens(ctx, db.SweepDeadTokensParams{
			PoolID: id, BatchSize: int32(batchSize), Pod: s.settings.Pod, Slot: sweepSlot,
		})
		return SweptCounts{Expired: int(n)}, err
	})
}

// sweepPools runs sweep once for every live pool.
func (s *Service) sweepPools(ctx context.Context, what string, sweep func(poolID int32) (SweptCounts, error)) (Swept, error) {
	pools, err := s.q.SweptPools(ctx)
	if err != nil {
		return Swept{}, storageError(what, err)
	}
	var out Swept
	for _, p := range pools {
		c, err := sweep(p.ID)
		if err != nil {
			if out.Most > 0 {
				s.changed()
			}
			return out, storageError(what, err)
		}
		if n := c.Lapsed + c.Expired; n > 0 {
			out.Add(Swept{Most: n, Pools: map[string]SweptCounts{p.Name: c}})
		}
	}
	if out.Most > 0 {
		s.changed()
	}
	return out, nil
}

// FoldCounterRows moves the counts of the counter rows of backends that have
// exited into the sweeps' row of their pool, in one statement, and says how
// many rows it folded. Each backend adds to a counter row of its own
// (migration 00030); without the fold, every connection ever opened would
// leave a row behind, and stats would sum ever more rows.
func (s *Service) FoldCounterRows(ctx context.Context) (int, error) {
	n, err := s.q.FoldCounterRows(ctx, sweepSlot)
	if err != nil {
		return 0, storageError("fold counter rows", err)
	}
	return int(n), nil
}
