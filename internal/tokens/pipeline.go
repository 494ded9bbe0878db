package tokens

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pipeline lets statements of several sqlc batch functions (ReleaseBatch,
// ClaimBatch, ...) share one pgx pipeline: a db.Queries on a pipeline does
// not send what a batch function queues, it collects it; send then sends
// everything collected as one pgx.Batch (one round trip, one Sync: one
// implicit transaction, one commit). The result sets each batch function
// returned read, in the order the statements were queued, from the one
// pipeline; the results must be read in that order, and close called
// last, once (it reads past the commit and reports its error).
//
// The SQL stays in queries/*.sql and its typing in sqlc's code: the
// pipeline only moves queued statements from one pgx.Batch to another.
type pipeline struct {
	batch pgx.Batch
	br    pgx.BatchResults
}

// errPipelineOnly is what a pipeline answers to anything but a batch: the
// statements of a round are all batch statements.
var errPipelineOnly = errors.New("tokens: a round's pipeline takes batch statements only")

func (p *pipeline) SendBatch(_ context.Context, b *pgx.Batch) pgx.BatchResults {
	p.batch.QueuedQueries = append(p.batch.QueuedQueries, b.QueuedQueries...)
	return pipelineResults{p}
}

func (p *pipeline) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, errPipelineOnly
}

func (p *pipeline) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errPipelineOnly
}

func (p *pipeline) QueryRow(context.Context, string, ...any) pgx.Row { return errRow{} }

type errRow struct{}

func (errRow) Scan(...any) error { return errPipelineOnly }

// sender is what sends a pipeline: the batched statements' connections.
type sender interface {
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}

// send sends the collected statements.
func (p *pipeline) send(ctx context.Context, to sender) {
	p.br = to.SendBatch(ctx, &p.batch)
}

// close ends the pipeline after its results were read: the first error of
// the transaction (a statement's, or the commit's), if any.
func (p *pipeline) close() error {
	return p.br.Close()
}

// pipelineResults is one batch function's view of the pipeline's results:
// reads go to the shared results, in order; closing is close's alone (sqlc's
// result readers close their results when done).
type pipelineResults struct{ p *pipeline }

func (r pipelineResults) Exec() (pgconn.CommandTag, error) { return r.p.br.Exec() }
func (r pipelineResults) Query() (pgx.Rows, error)         { return r.p.br.Query() }
func (r pipelineResults) QueryRow() pgx.Row                { return r.p.br.QueryRow() }
func (r pipelineResults) Close() error                     { return nil }
func (r pipelineResults) Tx() pgx.Tx                       { return nil }
