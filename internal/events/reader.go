package events

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokenlease/tokenlease/db/eventsdb"
	"github.com/tokenlease/tokenlease/internal/metrics"
)

// reader is the pod's one reader of the change log. It keeps the cursor, reads
// every row after it in bounded batches (Log argues why that is gap-free) and
// publishes them to the hub. It reads when kicked (the doorbell rang, or the
// LISTEN connection came back), on a slow poll as a safety net, and soon
// again while committed rows are held back behind an older running
// transaction.
type reader struct {
	dial   func(ctx context.Context) (*pgx.Conn, error)
	hub    *Hub
	batch  int
	poll   time.Duration // the safety-net poll
	minGap time.Duration // the least time between two reads, to coalesce kicks
	logger *slog.Logger

	kick    chan struct{}
	reads   atomic.Int64 // reads of rows
	queries atomic.Int64 // statements run on the reader's connection
	rang    atomic.Bool  // the doorbell rang since the last read (Rang)
	skips   atomic.Int64 // moves to the head while nobody needed events

	conn *pgx.Conn // the reader's own connection; nil until dialled or after an error
	log  *Log      // reads through conn
}

// Delays while rows are held back: short at first, since the older
// transaction is usually a claim a few milliseconds from its commit, and
// doubling while it still runs.
const (
	heldBackFirst = 2 * time.Millisecond
	// heldBackMax caps the delay while the horizon does not move: a
	// transaction left open for minutes costs each pod one statement a
	// second (step), and its end is seen within about a second.
	heldBackMax  = time.Second
	heldBackWarn = 5 * time.Second
	// heldBackRefine is how long rows stay held back before the reader
	// looks past the running transactions of other databases (Log).
	heldBackRefine = 10 * time.Millisecond
	// idleRefresh is how often the cursor follows the head while nobody
	// needs events; kicks in between are ignored. A subscriber or waiter
	// that arrives kicks the reader, which then reads the rows since.
	idleRefresh = 100 * time.Millisecond
)

func newReader(dial func(context.Context) (*pgx.Conn, error), hub *Hub, batch int, poll, minGap time.Duration, logger *slog.Logger) *reader {
	return &reader{dial: dial, hub: hub, batch: batch, poll: poll, minGap: minGap, logger: logger, kick: make(chan struct{}, 1)}
}

// TraceQueryStart counts the reader's statements (pgx.QueryTracer on its
// connection): what the reader costs the database is a figure worth watching.
func (r *reader) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.queries.Add(1)
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (r *reader) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// readerConnConfig derives the reader's connection from the pool's. The
// reader has its own connection so that a busy pool never delays it, and so
// that its statements can run on generic plans: the planner would otherwise
// plan the read afresh for every partition on every execution, which costs
// more than running it.
func readerConnConfig(poolConn *pgx.ConnConfig) *pgx.ConnConfig {
	cfg := poolConn.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = readerAppName
	cfg.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	return cfg
}

// readerAppName marks the reader's connection in pg_stat_activity.
const readerAppName = "tokenlease-reader"

// connect returns the reader's connection, dialling it when there is none.
func (r *reader) connect(ctx context.Context) (*Log, error) {
	if r.conn != nil {
		return r.log, nil
	}
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := r.dial(dialCtx)
	if err != nil {
		return nil, err
	}
	r.conn, r.log = conn, NewLog(eventsdb.New(conn))
	return r.log, nil
}

// disconnect drops the connection after an error (or at the end); the next
// read dials a new one.
func (r *reader) disconnect() {
	if r.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r.conn.Close(ctx) //nolint:errcheck // the connection is dropped either way
	r.conn, r.log = nil, nil
}

// Kick asks for a read soon; it never blocks, and kicks that come while a
// read is pending are merged.
func (r *reader) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run reads until ctx ends.
func (r *reader) run(ctx context.Context) {
	defer r.disconnect()
	cursor, ok := r.head(ctx)
	if !ok {
		return
	}
	r.hub.Start(cursor)

	// While the database fails, kicks (a waiter arriving, a doorbell) must
	// not cut the backoff short: each would cost a connection attempt and a
	// log line.
	retry := newBackoff(50*time.Millisecond, time.Second)
	var retryAt time.Time
	heldDelay := heldBackFirst
	var heldSince time.Time // when rows were first held back without progress
	var stalled int64       // while held back: the horizon every row below which has been read
	warned := false
	var lastSkip time.Time
	timer := time.NewTimer(r.poll)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
			if d := time.Until(retryAt); d > 0 {
				continue // the timer is set for retryAt
			}
		case <-timer.C:
		}
		retryAt = time.Time{}
		if since := time.Since(lastSkip); since < idleRefresh && !r.hub.wanted() {
			timer.Reset(idleRefresh - since)
			continue
		}
		rang := r.rang.Swap(false)
		refine := !heldSince.IsZero() && time.Since(heldSince) >= heldBackRefine
		n, skipped, held, horizon, err := r.step(ctx, &cursor, refine, stalled)
		stalled = horizon
		if skipped {
			lastSkip = time.Now()
		}
		r.announce(rang, n, skipped, held, err)
		var next time.Duration
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.disconnect()
			next = retry.next()
			retryAt = time.Now().Add(next)
			r.logger.Warn("events: reading the change log failed; retrying", "error", err, "retry_in", next)
		case held:
			retry.reset()
			if n > 0 || heldSince.IsZero() {
				heldDelay, heldSince, warned = heldBackFirst, time.Now(), false
			}
			next = heldDelay
			heldDelay = min(2*heldDelay, heldBackMax)
			if d := time.Since(heldSince); d > heldBackWarn && !warned {
				warned = true
				r.logger.Warn("events: the change stream is held back by a long-running writing transaction",
					"held_for", d.Round(time.Millisecond))
			}
		default:
			retry.reset()
			heldDelay, heldSince = heldBackFirst, time.Time{}
			next = r.poll
		}
		timer.Reset(next)
		if !sleep(ctx, r.minGap) {
			return
		}
	}
}

// Rang is the listener's call for each notification and each new LISTEN
// session: changes have committed. The reader reads soon, and if the log is
// held back so that the read cannot show them, it tells the hub (announce).
func (r *reader) Rang() {
	r.rang.Store(true)
	r.Kick()
}

// announce passes a ring on to the hub's held-ring observers when the read
// after it found nothing new and rows are held back: the changes it
// announced wait behind a running transaction. After a read that found rows
// the ring stays pending (the next read, soon, decides); without anyone
// interested, it is dropped.
func (r *reader) announce(rang bool, n int, skipped, held bool, err error) {
	switch {
	case !rang || skipped:
	case err != nil || held && n > 0:
		r.rang.Store(true)
	case held:
		r.hub.heldRing()
	}
}

// step reads what it can. While stalled (rows are held back, and every row
// below the horizon stalled has been read) it first asks for the horizon
// alone: while that has not moved nothing new can be read, and one statement
// was the whole cost of looking. It returns, with catchUp's results, the
// horizon up to which it has read while rows are held back (0: unknown).
func (r *reader) step(ctx context.Context, cursor *Position, refine bool, stalled int64) (n int, skipped, held bool, horizon int64, err error) {
	if stalled != 0 && r.hub.wanted() {
		log, err := r.connect(ctx)
		if err != nil {
			return 0, false, false, 0, err
		}
		h, err := log.OwnHorizon(ctx)
		if err != nil {
			return 0, false, false, 0, err
		}
		if h == stalled {
			return 0, false, true, h, nil
		}
	}
	return r.catchUp(ctx, cursor, refine)
}

// head finds the first cursor, retrying until the database answers.
func (r *reader) head(ctx context.Context) (Position, bool) {
	bo := newBackoff(50*time.Millisecond, 5*time.Second)
	for {
		log, err := r.connect(ctx)
		if err == nil {
			var p Position
			if p, err = log.Head(ctx); err == nil {
				return p, true
			}
			r.disconnect()
		}
		if ctx.Err() != nil {
			return Position{}, false
		}
		d := bo.next()
		r.logger.Warn("events: cannot find the head of the change log; retrying", "error", err, "retry_in", d)
		if !sleep(ctx, d) {
			return Position{}, false
		}
	}
}

// catchUp reads and publishes every final row after the cursor. It returns
// how many rows it read and whether committed rows may still be held back
// behind the horizon (after a read that found rows it assumes so, and the
// next, soon, read finds out). With refine, rows held back are read up to
// the horizon that passes other databases' transactions, and that horizon
// is returned. While no stream and no waiting assign needs events, it only
// moves the cursor to the head of the log (skipped): rows nobody will
// receive are not read.
func (r *reader) catchUp(ctx context.Context, cursor *Position, refine bool) (n int, skipped, held bool, horizon int64, err error) {
	log, err := r.connect(ctx)
	if err != nil {
		return 0, false, false, 0, err
	}
	if !r.hub.wanted() {
		head, err := log.Head(ctx)
		if err != nil {
			return 0, false, false, 0, err
		}
		if r.hub.skipTo(head) {
			r.skips.Add(1)
			if cursor.Before(head) {
				*cursor = head
			}
			return 0, true, false, 0, nil
		}
	}
	n, err = r.drain(cursor, func(after Position) (Chunk, error) { return log.Read(ctx, after, r.batch) })
	if err != nil {
		return n, false, false, 0, err
	}
	if n > 0 {
		// More may be held back, or on its way: look again soon rather
		// than ask. Under load this saves a statement per read.
		return n, false, true, 0, nil
	}
	// Held back means rows after the cursor, not rows past the horizon of
	// the next statement: the transaction that held a row back from the
	// read may end just before it, and the ring that announced the row has
	// been spent on this read.
	if held, err = log.HeldBack(ctx, *cursor); err != nil || !held || !refine {
		return n, false, held, 0, err
	}
	// Held back for a while: perhaps by a transaction of another database.
	if horizon, err = log.OwnHorizon(ctx); err != nil {
		return n, false, true, 0, err
	}
	if horizon > cursor.Xid {
		n, err = r.drain(cursor, func(after Position) (Chunk, error) {
			return log.readBelow(ctx, after, horizon, r.batch)
		})
		if err != nil {
			return n, false, true, 0, err
		}
	}
	return n, false, true, horizon, nil
}

// drain reads chunks after the cursor with read, publishing each and moving
// the cursor past it, until one says no more can be read at once; it returns
// how many rows it delivered.
func (r *reader) drain(cursor *Position, read func(after Position) (Chunk, error)) (int, error) {
	n := 0
	for {
		r.reads.Add(1)
		c, err := read(*cursor)
		if err != nil {
			return n, err
		}
		metrics.EventReaderLag(lag(c))
		if len(c.Events) > 0 {
			n += len(c.Events)
			*cursor = c.Cursor
			r.hub.Publish(c.Events)
		}
		if !c.More {
			return n, nil
		}
	}
}

// lag is how far behind the log a read that returned c leaves the reader:
// the age of the newest row delivered while more rows wait, else 0 (caught
// up). The ages compare the database's clock with the pod's; skew shows as a
// constant offset.
func lag(c Chunk) time.Duration {
	if !c.More || len(c.Events) == 0 {
		return 0
	}
	newest := c.Events[0].At
	for _, ev := range c.Events[1:] {
		if ev.At.After(newest) {
			newest = ev.At
		}
	}
	return max(0, time.Since(newest))
}
