package events

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tokenlease/tokenlease/db/eventsdb"
)

// notifyChannel is the LISTEN/NOTIFY channel of the doorbell.
const notifyChannel = "tokenlease_events"

// bell is the doorbell: after commits it sends one NOTIFY, outside every
// request's transaction and on its own goroutine, at most once per interval
// while changes keep coming. The first change after a quiet spell rings at
// once; changes during a ring or the interval after it are merged into the
// next ring. The payload is empty: listeners read the log.
//
// A NOTIFY takes a cluster-wide lock at commit; one per change would cut
// claim throughput by about two thirds, one per interval costs next to
// nothing.
type bell struct {
	q        *eventsdb.Queries
	interval time.Duration
	logger   *slog.Logger

	news  chan struct{}
	rings atomic.Int64
}

func newBell(q *eventsdb.Queries, interval time.Duration, logger *slog.Logger) *bell {
	return &bell{q: q, interval: interval, logger: logger, news: make(chan struct{}, 1)}
}

// Changed records that a change has committed. It never blocks: it costs one
// non-blocking channel send on the hot path.
func (b *bell) Changed() {
	select {
	case b.news <- struct{}{}:
	default:
	}
}

// run rings until ctx ends; news left at the end gets a last ring.
func (b *bell) run(ctx context.Context) {
	wait := time.NewTimer(0)
	defer wait.Stop()
	for {
		select {
		case <-ctx.Done():
			b.lastRing()
			return
		case <-b.news:
		}
		b.ring(ctx)
		wait.Reset(b.interval)
		select {
		case <-ctx.Done():
			b.lastRing()
			return
		case <-wait.C:
		}
	}
}

func (b *bell) ring(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := b.q.RingDoorbell(ctx); err != nil {
		if ctx.Err() == nil {
			// Other pods still find the change by their poll of the log.
			b.logger.Warn("events: ringing the doorbell failed", "error", err)
		}
		return
	}
	b.rings.Add(1)
}

// lastRing rings once more if changes came after the last ring, so that
// other pods hear of this pod's final changes without waiting for their poll.
func (b *bell) lastRing() {
	select {
	case <-b.news:
	default:
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b.ring(ctx)
}
