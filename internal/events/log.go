package events

import (
	"context"
	"fmt"
	"math"

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
// The id breaks ties within one transaction (a generate of many tokens).
// (xid, id) is not the order of the changes to one token, though: a
// transaction that took its xid and then waits for a token's row lock held
// by a younger transaction writes its change after the younger one's, yet
// comes first. Both rows then become final together or the younger one
// later; Read arranges each read so that a token's changes come in order
// (order.go).
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

// Chunk is one read of the log, arranged for delivery.
type Chunk struct {
	// Events are the rows that may be delivered now, each token's in the
	// order of its changes, each with its Mark (see arrange).
	Events []Event
	// Cursor is where the next read starts: every row at or before it is in
	// Events or was delivered before (the read's start when Events is empty).
	Cursor Position
	// More reports that the read filled its limit: more rows may be read at
	// once.
	More bool
}

// maxGrowth bounds how far a read grows (limit times maxGrowth rows) when
// its first row waits for a row past its limit; past that the read delivers
// in the order it has (see arranged).
const maxGrowth = 16

// Read returns up to limit final rows after after: those below the horizon
// of the statement's snapshot, arranged so that each token's changes come in
// order.
func (l *Log) Read(ctx context.Context, after Position, limit int) (Chunk, error) {
	return arranged(after, limit, func(limit int) (rows, ahead []Event, final func(Position) bool, err error) {
		found, err := l.q.ReadEvents(ctx, eventsdb.ReadEventsParams{
			AfterXid: after.Xid, AfterID: after.ID, MaxRows: int32(limit), Lookahead: int32(limit),
		})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("events: read log: %w", err)
		}
		var horizon int64
		for _, r := range found {
			horizon = r.Horizon
			if r.Ahead {
				ahead = append(ahead, eventFromRow(r))
			} else {
				rows = append(rows, eventFromRow(r))
			}
		}
		return rows, ahead, func(p Position) bool { return p.Xid < horizon }, nil
	})
}

// ReadUpTo returns up to limit rows after after and not past until,
// arranged like Read; rows past until are not looked at. The caller vouches
// that every row up to until is final: a position a reader has reached (the
// reader arranged its reads so that no row up to it waits for a row past
// it).
func (l *Log) ReadUpTo(ctx context.Context, after, until Position, limit int) (Chunk, error) {
	return l.readUpTo(ctx, after, until, until, limit)
}

// readBelow returns up to limit rows after after and below the horizon h
// (final rows: see OwnHorizon), arranged like Read; the rows of their tokens
// past h count too, held back or not.
func (l *Log) readBelow(ctx context.Context, after Position, h int64, limit int) (Chunk, error) {
	return l.readUpTo(ctx, after, Position{Xid: h}, Position{Xid: math.MaxInt64, ID: math.MaxInt64}, limit)
}

func (l *Log) readUpTo(ctx context.Context, after, until, aheadUntil Position, limit int) (Chunk, error) {
	return arranged(after, limit, func(limit int) (rows, ahead []Event, final func(Position) bool, err error) {
		found, err := l.q.ReadEventsUpTo(ctx, eventsdb.ReadEventsUpToParams{
			AfterXid: after.Xid, AfterID: after.ID, UntilXid: until.Xid, UntilID: until.ID, MaxRows: int32(limit),
			AheadXid: aheadUntil.Xid, AheadID: aheadUntil.ID, Lookahead: int32(limit),
		})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("events: read log: %w", err)
		}
		for _, r := range found {
			ev := eventFromRow(eventsdb.ReadEventsRow{
				ID: r.ID, Xid: r.Xid, At: r.At, Kind: r.Kind, Token: r.Token, LeaseID: r.LeaseID,
				Holder: r.Holder, Pool: r.Pool, Version: r.Version, Actor: r.Actor,
			})
			if r.Ahead {
				ahead = append(ahead, ev)
			} else {
				rows = append(rows, ev)
			}
		}
		return rows, ahead, func(p Position) bool { return !until.Before(p) }, nil
	})
}

// arranged reads with fetch (rows after after in log order, up to limit,
// and the rows past them that changed the same tokens first) and arranges
// what can be delivered. A row is withheld while a row of its token with a
// smaller id is not in the read: until the horizon moves, when that row is
// held back (the next read after it delivers both), or until a larger read,
// when it lies past the limit. A read whose first row still waits at
// maxGrowth times the limit delivers what it has, each token's rows within
// it in order: memory stays bounded, at the price of that token's order.
func arranged(after Position, limit int, fetch func(limit int) (rows, ahead []Event, final func(Position) bool, err error)) (Chunk, error) {
	for size := limit; ; size *= 4 {
		rows, ahead, final, err := fetch(size)
		if err != nil {
			return Chunk{Cursor: after}, err
		}
		n, wait, inOrder := deliverable(rows, ahead, final)
		if n == 0 && len(rows) > 0 && !wait {
			if size < limit*maxGrowth {
				continue
			}
			n, inOrder = len(rows), false
		}
		c := Chunk{Cursor: after, More: len(rows) == size && n > 0, Events: rows[:n]}
		if n > 0 {
			c.Cursor = rows[n-1].Pos
		}
		if !inOrder {
			c.Events = arrange(after, rows[:n])
		}
		return c, nil
	}
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

// HeldBack reports, after a read from after that delivered nothing, whether
// committed rows after after are unread: they wait behind the horizon
// because an older transaction still runs, or it has ended since that read.
func (l *Log) HeldBack(ctx context.Context, after Position) (bool, error) {
	held, err := l.q.EventsHeldBack(ctx, eventsdb.EventsHeldBackParams{AfterXid: after.Xid, AfterID: after.ID})
	if err != nil {
		return false, fmt.Errorf("events: check horizon: %w", err)
	}
	return held, nil
}
