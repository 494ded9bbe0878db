package jobs

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/tokenlease/tokenlease/internal/metrics"
	"github.com/tokenlease/tokenlease/internal/tokens"
)

// SweepWorker deletes dead tokens and frees lapsed leases in index-driven
// batches, until a batch comes back short or the time budget is spent (the
// next run goes on from there).
type SweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	svc       *tokens.Service
	batchSize int
	budget    time.Duration
}

// Work implements river.Worker.
func (w *SweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	// Dead rows first: until they are gone, every lapsed-lease probe (the
	// sweep's and the claims') reads past them.
	start := time.Now()
	deadline := start.Add(w.budget)
	swept, err := w.drain(ctx, deadline, w.svc.SweepDeadTokens)
	if err == nil {
		var lapsed tokens.Swept
		lapsed, err = w.drain(ctx, deadline, w.svc.SweepLapsedLeases)
		swept.Add(lapsed)
	}
	metrics.SweepDuration(time.Since(start))
	for pool, c := range swept.Pools {
		metrics.LeaseLapsed(pool, c.Lapsed)
		metrics.TokensExpired(pool, c.Expired)
		slog.Info("swept tokens", "pool", pool, "lapsed", c.Lapsed, "expired", c.Expired)
	}
	return err
}

func (w *SweepWorker) drain(ctx context.Context, deadline time.Time, sweep func(context.Context, int) (tokens.Swept, error)) (tokens.Swept, error) {
	var total tokens.Swept
	for {
		s, err := sweep(ctx, w.batchSize)
		total.Add(s)
		if err != nil || s.Most < w.batchSize || time.Now().After(deadline) {
			return total, err
		}
	}
}

// PartitionArgs is the hourly upkeep of the audit partitions.
type PartitionArgs struct{}

// Kind implements river.JobArgs.
func (PartitionArgs) Kind() string { return "tokenlease_audit_partitions" }

// PartitionWorker keeps a week of daily audit partitions ahead, drops the
// partitions older than the retention and trims the default partition.
type PartitionWorker struct {
	river.WorkerDefaults[PartitionArgs]
	svc       *tokens.Service
	retention time.Duration
}

// upkeepRetry is how long the upkeep waits before it tries again a step that
// found a lock held elsewhere (an open reader of token_log, say).
const upkeepRetry = time.Minute

// Work implements river.Worker.
func (w *PartitionWorker) Work(ctx context.Context, _ *river.Job[PartitionArgs]) error {
	up, err := w.svc.MaintainEventPartitions(ctx, 7, w.retention)
	if up.Created > 0 || up.Dropped > 0 || up.Indexed > 0 || up.DefaultDeleted > 0 {
		slog.Info("maintained audit partitions", "created", up.Created, "dropped", up.Dropped,
			"indexed", up.Indexed, "default_rows_deleted", up.DefaultDeleted)
	}
	if errors.Is(err, tokens.ErrUpkeepBusy) {
		// A snooze does not count as a failed attempt: the upkeep keeps
		// trying until the lock holder is gone.
		slog.Info("audit partition upkeep found a lock held elsewhere; will retry", "in", upkeepRetry)
		return river.JobSnooze(upkeepRetry)
	}
	return err
}
