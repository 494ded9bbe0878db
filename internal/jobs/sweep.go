package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/tokenlease/tokenlease/internal/metrics"
	"github.com/tokenlease/tokenlease/internal/tokens"
)

// SweepWorker frees lapsed leases and deletes dead tokens in index-driven
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
	start := time.Now()
	deadline := start.Add(w.budget)
	released, err := w.drain(ctx, deadline, w.svc.SweepLapsedLeases)
	expired := 0
	if err == nil {
		expired, err = w.drain(ctx, deadline, w.svc.SweepDeadTokens)
	}
	metrics.Swept(metrics.DefaultPool, released, expired, time.Since(start))
	if released > 0 || expired > 0 {
		slog.Info("swept tokens", "released", released, "expired", expired)
	}
	return err
}

func (w *SweepWorker) drain(ctx context.Context, deadline time.Time, sweep func(context.Context, int) (int, error)) (int, error) {
	total := 0
	for {
		n, err := sweep(ctx, w.batchSize)
		total += n
		if err != nil || n < w.batchSize || time.Now().After(deadline) {
			return total, err
		}
	}
}

// PartitionArgs is the hourly upkeep of the audit partitions.
type PartitionArgs struct{}

// Kind implements river.JobArgs.
func (PartitionArgs) Kind() string { return "tokenlease_audit_partitions" }

// PartitionWorker keeps a week of daily audit partitions ahead and drops the
// partitions older than the retention.
type PartitionWorker struct {
	river.WorkerDefaults[PartitionArgs]
	svc       *tokens.Service
	retention time.Duration
}

// Work implements river.Worker.
func (w *PartitionWorker) Work(ctx context.Context, _ *river.Job[PartitionArgs]) error {
	created, dropped, err := w.svc.MaintainEventPartitions(ctx, 7, w.retention)
	if created > 0 || dropped > 0 {
		slog.Info("maintained audit partitions", "created", created, "dropped", dropped)
	}
	return err
}
