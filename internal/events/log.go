package events

import (
	"context"
	"fmt"

	"github.com/tokenlease/tokenlease/db/eventsdb"
)

// Log reads the change log, the token_events table, in commit-safe order.
//
// Why reading is gap-free. Every row stores xid, the id of the transaction
// that wrote it (pg_current_xact_id(), a 64-bit id that never wraps). A read
// returns only rows with xid below its horizon, pg_snapshot_xmin of the
// statement's own snapshot, in (xid, id) order after a cursor:
//
//  1. Every transaction with an xid below the horizon has ended when the
//     snapshot is taken (xmin is the oldest xid the snapshot still sees as
//     running), so each such row is either visible to the read (committed)
//     or never will be (aborted). No transaction gets an xid below the
//     horizon later either: new xids are always above every xid handed out
//     before. So the set of rows below a read's horizon is final.
//  2. A read returns, in order, every visible row after the cursor up to its
//     limit, and the cursor moves only to a row it returned. Every row at or
//     before that row has an xid no larger, so below the horizon: by (1) the
//     read saw all of them that will ever exist. No row at or before the
//     cursor can appear later, whatever horizon later reads see.
//
// So a reader that advances its cursor row by row sees every committed row
// exactly once, even when a transaction with a smaller id (or xid) commits
// after one with a larger: the later row is simply held back until the older
// transaction ends.
//
// The price is that a long-running writing transaction holds every later
// event back until it ends; xids are cluster-wide, so even one in another
// database would (a CREATE DATABASE, a batch job of another application).
// OwnHorizon lifts that case: a running xid whose lock is held by a backend
// connected to another database cannot write this database's rows, so the
// horizon may pass it (a backend never changes database, so this knowledge
// does not go stale; every doubt keeps the horizon low). Point (1) holds for
// that horizon too, and a horizon stays valid for later reads, so the
// reader uses it only when rows have been held back for a while. A long
// writing transaction in this database still holds events back.
//
// The id breaks ties within one transaction (a generate of many tokens), and
// (xid, id) is also the order of the changes to any one token: a change
// takes the token's row lock before its transaction gets an xid, so a second
// change to the same token waits for the first to commit and gets a larger
// xid.
type Log struct {
	q *eventsdb.Queries
}

// NewLog returns a Log that reads through q.
func NewLog(q *eventsdb.Queries) *Log { return &Log{q: q} }

// Head returns the position of "now": every row before it is final, and
// every row that commits later lies after it. It is the horizon that passes
// other databases' transactions, so that a stream that starts now does not
// start behind one of them.
func (l *Log) Head(ctx context.Context) (Position, error) {
	h, err := l.OwnHorizon(ctx)
	if err != nil {
		return Position{}, err
	}
	// Row ids start at 1, so (h, 0) lies after every row with xid < h and
	// before every row with xid >= h.
	return Position{Xid: h}, nil
}

// Read returns up to limit final rows after after, in log order: those
// below the horizon of the statement's snapshot.
func (l *Log) Read(ctx context.Context, after Position, limit int) ([]Event, error) {
	rows, err := l.q.ReadEvents(ctx, eventsdb.ReadEventsParams{AfterXid: after.Xid, AfterID: after.ID, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("events: read log: %w", err)
	}
	evs := make([]Event, len(rows))
	for i, r := range rows {
		evs[i] = eventFromRow(r)
	}
	return evs, nil
}

// ReadUpTo returns up to limit rows after after and not past until, in log
// order. The caller vouches that every row up to until is final: a position
// a reader has reached, or Position{Xid: h} for a horizon h.
func (l *Log) ReadUpTo(ctx context.Context, after, until Position, limit int) ([]Event, error) {
	rows, err := l.q.ReadEventsUpTo(ctx, eventsdb.ReadEventsUpToParams{
		AfterXid: after.Xid, AfterID: after.ID, UntilXid: until.Xid, UntilID: until.ID, MaxRows: int32(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("events: read log: %w", err)
	}
	evs := make([]Event, len(rows))
	for i, r := range rows {
		evs[i] = eventFromRow(eventsdb.ReadEventsRow(r))
	}
	return evs, nil
}

// OwnHorizon returns a horizon that passes the running transactions of other
// databases (see Log): every row below it is final.
func (l *Log) OwnHorizon(ctx context.Context) (int64, error) {
	h, err := l.q.OwnDatabaseHorizon(ctx)
	if err != nil {
		return 0, fmt.Errorf("events: read own horizon: %w", err)
	}
	return h, nil
}

// HeldBack reports whether committed rows wait behind the horizon because an
// older transaction still runs.
func (l *Log) HeldBack(ctx context.Context) (bool, error) {
	held, err := l.q.EventsHeldBack(ctx)
	if err != nil {
		return false, fmt.Errorf("events: check horizon: %w", err)
	}
	return held, nil
}
