package events

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tokenlease/tokenlease/db"
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
	Pos     Position
	Kind    string
	Token   string
	LeaseID *int64
	Holder  *string
	At      time.Time
	// data is the SSE data line, encoded once by the reader and shared by
	// every stream.
	data []byte
}

// eventData is the JSON of an event on the stream.
type eventData struct {
	Kind    string  `json:"kind"`
	Token   string  `json:"token"`
	TokenFP string  `json:"token_fp"`
	LeaseID *int64  `json:"lease_id,omitempty"`
	Holder  *string `json:"holder,omitempty"`
	At      string  `json:"at"`
}

// timeLayout is RFC 3339 in UTC with microseconds, as the REST API writes times.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

func eventFromRow(r db.ReadEventsRow) Event {
	e := Event{
		Pos:  Position{Xid: r.Xid, ID: r.ID},
		Kind: r.Kind, Token: r.Token, LeaseID: r.LeaseID, Holder: r.Holder, At: r.At,
	}
	// Marshalling strings, an *int64 and a *string cannot fail. JSON escapes
	// every line break, so the data is one SSE line.
	e.data, _ = json.Marshal(eventData{
		Kind: e.Kind, Token: e.Token, TokenFP: Fingerprint(e.Token), LeaseID: e.LeaseID, Holder: e.Holder,
		At: e.At.UTC().Format(timeLayout),
	})
	return e
}

// Data returns the event's JSON, as the stream sends it.
func (e Event) Data() []byte { return e.data }

// freesToken reports whether a change of this kind may leave a token free
// for a waiting assign.
func freesToken(kind string) bool {
	switch kind {
	case KindUnblocked, KindReleased, KindGenerated, KindImported:
		return true
	}
	return false
}

// KindSet selects kinds of event; the zero value selects every kind.
type KindSet struct{ only map[string]bool }

// Has reports whether the set selects kind.
func (s KindSet) Has(kind string) bool { return s.only == nil || s.only[kind] }

// ParseKinds reads a filter from query values, each a comma-separated list of
// kinds ("assigned,unblocked"). No values, or only empty ones, select every
// kind; an unknown kind is an error that names it.
func ParseKinds(values []string) (KindSet, error) {
	var s KindSet
	for _, v := range values {
		for k := range strings.SplitSeq(v, ",") {
			k = strings.TrimSpace(k)
			if k == "" {
				continue
			}
			if !isKind(k) {
				return KindSet{}, fmt.Errorf("kind %q is not one of %s", k, strings.Join(allKinds, ", "))
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
