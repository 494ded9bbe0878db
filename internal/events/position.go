package events

import (
	"errors"
	"strconv"
	"strings"
)

// Position is a place in the change log: the writing transaction's id and
// the row's id. The log is read in (Xid, ID) order, and a reader's cursor is
// the position of the last row it has seen; every row at or before the
// cursor has been delivered, none after it. On the wire (SSE id, Last-Event-ID)
// a position is "<xid>-<id>".
type Position struct {
	Xid int64
	ID  int64
}

// ErrBadPosition is what ParsePosition returns for a malformed position (a
// Last-Event-ID the service did not write).
var ErrBadPosition = errors.New(`an event id has the form "<xid>-<id>" with two non-negative integers`)

// Before reports whether p comes strictly before q in log order.
func (p Position) Before(q Position) bool {
	return p.Xid < q.Xid || (p.Xid == q.Xid && p.ID < q.ID)
}

// String formats p as "<xid>-<id>".
func (p Position) String() string {
	b := make([]byte, 0, 40)
	b = strconv.AppendInt(b, p.Xid, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, p.ID, 10)
	return string(b)
}

// ParsePosition reads a position written by String.
func ParsePosition(s string) (Position, error) {
	x, i, ok := strings.Cut(s, "-")
	if !ok {
		return Position{}, ErrBadPosition
	}
	xid, err1 := strconv.ParseInt(x, 10, 64)
	id, err2 := strconv.ParseInt(i, 10, 64)
	if err1 != nil || err2 != nil || xid < 0 || id < 0 || x[0] == '+' || i[0] == '+' {
		return Position{}, ErrBadPosition
	}
	return Position{Xid: xid, ID: id}, nil
}
