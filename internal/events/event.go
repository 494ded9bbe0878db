package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tokenlease/tokenlease/db/eventsdb"
)

// The kinds of change, as the token_events table names them.
const (
	KindGenerated = "generated"
	KindImported  = "imported"
	KindAssigned  = "assigned"
	KindUnblocked = "unblocked"
	KindReleased  = "released" // a lapsed lease, freed by the sweeper or by a claim
	KindKeptAlive = "kept_alive"
	KindDeleted   = "deleted"
	KindExpired   = "expired" // died without keep-alive
)

// allKinds is every kind, in the order the documentation lists them.
var allKinds = []string{
	KindGenerated, KindImported, KindAssigned, KindUnblocked,
	KindReleased, KindKeptAlive, KindDeleted, KindExpired,
}

// Event is one committed change, as read from the log.
type Event struct {
	// Pos is the row's place in the log; the data carries it as "pos".
	Pos Position
	// Mark is the watermark after the event in delivery order: every row at
	// or before it has been delivered once this event has. A stream hands it
	// out as the event's id (Last-Event-ID), never Pos: the reader may
	// deliver a token's changes out of log order (order.go), and a resume
	// after Mark re-reads every row not yet delivered. It is Pos while the
	// read needed no reordering.
	Mark    Position
	Pool    string // the pool's name
	Kind    string
	Token   string
	LeaseID *int64
	Holder  *string
	At      time.Time
	// Version is the token's version after the change: per token, strictly
	// increasing and consecutive. Nil on rows written before pools existed.
	Version *int64
	// Actor made the change (an API key's name or a JWT's subject); nil for
	// sweeps and with AUTH=off.
	Actor *string
	// data is the event's JSON, encoded once by the reader and shared by
	// every consumer.
	data []byte
}

// eventData is the JSON of an event on the stream.
type eventData struct {
	Pos     string  `json:"pos"`
	Kind    string  `json:"kind"`
	Pool    string  `json:"pool"`
	Token   string  `json:"token"`
	TokenFP string  `json:"token_fp"`
	LeaseID *int64  `json:"lease_id,omitempty"`
	Holder  *string `json:"holder,omitempty"`
	Version *int64  `json:"version,omitempty"`
	Actor   *string `json:"actor,omitempty"`
	At      string  `json:"at"`
}

// timeLayout is RFC 3339 in UTC with microseconds, as the REST API writes times.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

func eventFromRow(r eventsdb.ReadEventsRow) Event {
	return NewEvent(Event{
		Pos: Position{Xid: r.Xid, ID: r.ID}, Pool: r.Pool, Kind: r.Kind, Token: r.Token,
		LeaseID: r.LeaseID, Holder: r.Holder, At: r.At, Version: r.Version, Actor: r.Actor,
	})
}

// NewEvent returns e with its JSON encoded.
func NewEvent(e Event) Event {
	// Marshalling strings, *int64s and *strings cannot fail. JSON escapes
	// every line break, so the data fits one SSE data line.
	if e.Mark == (Position{}) {
		e.Mark = e.Pos
	}
	e.data, _ = json.Marshal(eventData{
		Pos: e.Pos.String(), Kind: e.Kind, Pool: e.Pool, Token: e.Token, TokenFP: Fingerprint(e.Token), LeaseID: e.LeaseID, Holder: e.Holder,
		Version: e.Version, Actor: e.Actor, At: e.At.UTC().Format(timeLayout),
	})
	return e
}

// Data returns the event's JSON: {"pos", "kind", "pool", "token", "lease_id"?,
// "holder"?, "version"?, "actor"?, "at"}, as the stream sends it. The slice
// is shared: do not modify it.
func (e Event) Data() []byte { return e.data }

// Filter selects the events a subscriber receives: by kind and by pool.
// The zero value selects every event.
type Filter struct {
	Kinds KindSet
	// Pools names the pools selected; nil selects every pool.
	Pools map[string]bool
}

// Has reports whether the filter selects ev.
func (f Filter) Has(ev Event) bool {
	return f.Kinds.Has(ev.Kind) && (f.Pools == nil || f.Pools[ev.Pool])
}

// KindSet selects kinds of event; the zero value selects every kind.
type KindSet struct{ only map[string]bool }

// Has reports whether the set selects kind.
func (s KindSet) Has(kind string) bool { return s.only == nil || s.only[kind] }

// ErrUnknownKind is what ParseKinds returns for a kind it does not know.
var ErrUnknownKind = errors.New("unknown event kind")

// ParseKinds reads a filter from query values, each a comma-separated list of
// kinds ("assigned,unblocked"). No values, or only empty ones, select every
// kind; an unknown kind is ErrUnknownKind, with a message that names it.
func ParseKinds(values []string) (KindSet, error) {
	var s KindSet
	for _, v := range values {
		for k := range strings.SplitSeq(v, ",") {
			k = strings.TrimSpace(k)
			if k == "" {
				continue
			}
			if !isKind(k) {
				return KindSet{}, fmt.Errorf("%w %q: use one of %s", ErrUnknownKind, k, strings.Join(allKinds, ", "))
			}
			if s.only == nil {
				s.only = make(map[string]bool)
			}
			s.only[k] = true
		}
	}
	return s, nil
}

func isKind(k string) bool {
	for _, a := range allKinds {
		if a == k {
			return true
		}
	}
	return false
}
