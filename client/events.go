package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Event is one change of a token, as the event stream delivers it.
type Event struct {
	ID      string    `json:"id"`            // the resume point: every change up to it has been delivered; resume after it with Last-Event-ID
	Pos     string    `json:"pos,omitempty"` // the change's own place in the log; unique per change
	Kind    string    `json:"kind"`          // generated, imported, assigned, unblocked, released, kept_alive, deleted, expired
	Pool    string    `json:"pool,omitempty"`
	Token   string    `json:"token,omitempty"`
	TokenFP string    `json:"token_fp,omitempty"` // instead of Token for role reader
	LeaseID int64     `json:"lease_id,omitempty"`
	Holder  string    `json:"holder,omitempty"`
	Actor   string    `json:"actor,omitempty"`
	Version int64     `json:"version,omitempty"`
	At      time.Time `json:"at"`
	// Data is the event's raw JSON, with any field this package does not know.
	Data json.RawMessage `json:"-"`
}

// EventsFilter selects events.
type EventsFilter struct {
	// Pools to stream: none means pool "default" (/tokens/events); one, that
	// pool's stream; several, /events?pool=a&pool=b.
	Pools []string
	Kinds []string // only these kinds; none means all
	// LastEventID resumes after that event; empty starts now.
	LastEventID string
}

// streamIdle is how long a stream may stay silent before it is presumed
// dead and reopened: the server sends a comment every 15 s.
const streamIdle = 45 * time.Second

// Events streams changes as they happen, each token's in the order of its
// changes (version order). The iteration goes on across disconnects,
// slow-consumer drops and pod changes: it reconnects (to the next base URL
// when one fails) with Last-Event-ID set to the id of the last event it
// yielded. The server then sends again the changes it had delivered ahead of
// that id (a token's changes reordered into version order); the iterator
// drops them by their pos, so nothing is skipped or repeated once the first
// event has arrived (before it, a reconnect starts at "now" again). It ends when ctx is done (without an
// error) or after yielding an error the server will keep giving (bad
// filter, credentials, permissions, unknown pool).
func (c *Client) Events(ctx context.Context, f EventsFilter) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		path, q := eventsPath(f)
		last := f.LastEventID
		// ahead holds the pos of each event yielded that lies past last: a
		// resume from last sends it again. It holds at most one read of the
		// server's (the server's ids catch up with every read's end).
		ahead := map[string]bool{}
		bo := newBackoff()
		for ctx.Err() == nil {
			got, err := c.stream(ctx, path, q, last, func(ev Event) bool {
				pos := ev.Pos
				if pos == "" {
					pos = ev.ID // a server whose ids are the events' own positions
				}
				if ahead[pos] || !after(pos, last) {
					return true // already yielded before a reconnect
				}
				if after(ev.ID, last) {
					last = ev.ID
					for p := range ahead {
						if !after(p, last) {
							delete(ahead, p)
						}
					}
				}
				if after(pos, last) {
					ahead[pos] = true
				}
				return yield(ev, nil)
			})
			if errors.Is(err, errStop) || ctx.Err() != nil {
				return
			}
			var ae *APIError
			if errors.As(err, &ae) && ae.Status != http.StatusServiceUnavailable && ae.Status != http.StatusTooManyRequests &&
				ae.Status < 500 {
				yield(Event{}, err)
				return
			}
			var retryAfter time.Duration
			if ae != nil {
				retryAfter = ae.RetryAfter
			}
			if got {
				bo.Reset()
			}
			wait := max(bo.NextBackOff(), retryAfter)
			if sleep(ctx, wait) != nil {
				return
			}
		}
	}
}

var errStop = errors.New("stop")

func eventsPath(f EventsFilter) (string, url.Values) {
	q := url.Values{}
	if len(f.Kinds) > 0 {
		q.Set("kind", strings.Join(f.Kinds, ","))
	}
	switch len(f.Pools) {
	case 0:
		return "/tokens/events", q
	case 1:
		return tokensPath(f.Pools[0]) + "/events", q
	default:
		q["pool"] = f.Pools
		return "/events", q
	}
}

// stream opens one event stream and feeds its events to each until the
// stream ends; got reports whether any event arrived. A failure moves the
// client to the next base URL.
func (c *Client) stream(ctx context.Context, path string, q url.Values, last string, each func(Event) bool) (got bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := time.AfterFunc(streamIdle, cancel)
	defer idle.Stop()
	h := http.Header{"Accept": {"text/event-stream"}}
	if last != "" {
		h.Set("Last-Event-ID", last)
	}
	idx := int(c.current.Load()) % len(c.bases)
	resp, err := c.send(sctx, idx, http.MethodGet, path, q, nil, h)
	if err != nil {
		c.failover(idx)
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode >= 500 {
			c.failover(idx)
		}
		return false, decodeError(resp, b)
	}
	err = readSSE(resp.Body, func() { idle.Reset(streamIdle) }, func(id, kind string, data []byte) error {
		if kind == "dropped" {
			return errDropped // reconnect and resume from the log
		}
		if id == "" {
			return nil // not a change (no position to resume from)
		}
		ev := Event{ID: id, Kind: kind, Data: json.RawMessage(data)}
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("tokenlease: event %s: %w", id, err)
		}
		ev.ID, ev.Kind = id, kind
		got = true
		if !each(ev) {
			return errStop
		}
		return nil
	})
	if err == nil || errors.Is(err, errDropped) {
		err = fmt.Errorf("%w: event stream ended", ErrUnavailable)
	}
	if !errors.Is(err, errStop) {
		c.failover(idx)
	}
	return got, err
}

var errDropped = errors.New("dropped as a slow consumer")

// readSSE parses a text/event-stream, calling seen for every line and
// dispatch for every event (RFC: fields id, event, data; comments ignored).
func readSSE(r io.Reader, seen func(), dispatch func(id, kind string, data []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var id, kind string
	var data []byte
	hasData := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err // a partial event at the end is not an event
		}
		seen()
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if hasData {
				if err := dispatch(id, kind, data); err != nil {
					return err
				}
			}
			id, kind, data, hasData = "", "", nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			id = value
		case "event":
			kind = value
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
		}
	}
}

// after reports whether event id comes after last. Positions of the form
// <xid>-<id> compare numerically; other forms only by equality.
func after(id, last string) bool {
	if last == "" {
		return true
	}
	a1, a2, ok1 := position(id)
	b1, b2, ok2 := position(last)
	if !ok1 || !ok2 {
		return id != last
	}
	return a1 > b1 || (a1 == b1 && a2 > b2)
}

func position(id string) (uint64, uint64, bool) {
	x, y, ok := strings.Cut(id, "-")
	if !ok {
		return 0, 0, false
	}
	a, err1 := strconv.ParseUint(x, 10, 64)
	b, err2 := strconv.ParseUint(y, 10, 64)
	return a, b, err1 == nil && err2 == nil
}
