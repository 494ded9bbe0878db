// Package jobs owns the service's background work, run by River: the periodic
// sweeps that tidy lapsed leases and dead tokens, and the upkeep of the audit
// partitions. Periodic jobs are enqueued by River's elected leader only, so
// each runs once per interval across all pods. Correctness never depends on
// them: every query filters on the deadlines itself.
package jobs

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/tokenlease/tokenlease/internal/tokens"
)

// Options configure the background work.
type Options struct {
	SweepInterval  time.Duration
	SweepBatchSize int
	AuditRetention time.Duration
	Logger         *slog.Logger
	// PollOnly keeps River from LISTENing on pool, for a pool behind a
	// transaction pooler (PgBouncer), where a LISTEN is lost after its
	// statement: River then polls for jobs and leadership instead.
	PollOnly bool
}

// NewClient returns a River client that runs the sweeps and the partition
// upkeep on the connections conns. Start it with Start and stop it with Stop.
func NewClient(conns *pgxpool.Pool, svc *tokens.Service, opts Options) (*river.Client[pgx.Tx], error) {
	workers := river.NewWorkers()
	river.AddWorker(workers, &SweepWorker{svc: svc, batchSize: opts.SweepBatchSize, budget: max(opts.SweepInterval, time.Second)})
	river.AddWorker(workers, &PartitionWorker{svc: svc, retention: opts.AuditRetention})

	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	client, err := river.NewClient(riverpgxv5.New(conns), &river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Workers: workers,
		PeriodicJobs: []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(opts.SweepInterval),
				func() (river.JobArgs, *river.InsertOpts) { return SweepArgs{}, nil },
				&river.PeriodicJobOpts{ID: "sweep", RunOnStart: true}),
			river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
				func() (river.JobArgs, *river.InsertOpts) { return PartitionArgs{}, nil },
				&river.PeriodicJobOpts{ID: "audit_partitions", RunOnStart: true}),
		},
		// A sweep every second would otherwise keep a day of finished jobs.
		CompletedJobRetentionPeriod: 10 * time.Minute,
		Logger:                      logger,
		MaxAttempts:                 3,
		PollOnly:                    opts.PollOnly,
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return client, nil
}

// SweepArgs is the periodic sweep of lapsed leases and dead tokens.
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "tokenlease_sweep" }

// InsertOpts keeps sweeps from piling up behind a slow one: while one is
// queued or running, the leader inserts no other.
func (SweepArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: pendingStates}}
}

var pendingStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending,
	rivertype.JobStateRunning, rivertype.JobStateScheduled,
}
