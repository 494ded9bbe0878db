package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/auth"
	"github.com/tokenlease/tokenlease/internal/events"
	"github.com/tokenlease/tokenlease/internal/metrics"
	"github.com/tokenlease/tokenlease/internal/tokens"
)

// EventSource is what the event stream needs of the events layer
// (*events.Bus): the live feed, its cursor, the log behind it for resumes,
// and the layer's shutdown.
type EventSource interface {
	Subscribe(ctx context.Context, f events.Filter) (*events.Subscription, events.Position, error)
	Cursor(ctx context.Context) (events.Position, error)
	ReadUpTo(ctx context.Context, after, until events.Position, limit int) (events.Chunk, error)
	Done() <-chan struct{}
}

// StreamOptions tune GET /tokens/events; zero values take the defaults.
type StreamOptions struct {
	Batch        int           // rows per read of the log during a resume (1000)
	Heartbeat    time.Duration // comment on an idle stream (15s)
	WriteTimeout time.Duration // longest write to a stream's client (10s)
	MaxStreams   int           // streams open at once (1000)
}

func (o StreamOptions) withDefaults() StreamOptions {
	if o.Batch <= 0 {
		o.Batch = 1000
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = 1000
	}
	return o
}

// errStreamClosed is the answer to a stream asked for while the pod shuts down.
var errStreamClosed = fmt.Errorf("the event stream is shutting down: %w", events.ErrClosed)

// streamer serves the event streams as Server-Sent Events (GET
// /tokens/events: pool default; /pools/{pool}/tokens/events: that pool;
// /events?pool=a&pool=b: the pools named, every pool when none is):
//
//	id: <xid>-<id>
//	event: <kind>
//	data: {"pos":..., "kind":..., "pool":..., "token":..., "lease_id":..., "holder":..., "version":..., "actor":..., "at":...}
//
// ?kind=a,b (repeatable) filters by kind. An id is the event's Mark, a
// position of the one change log (every row up to it has been sent), so a
// Last-Event-ID from any of the streams resumes any other. Without
// Last-Event-ID the stream starts now, at the reader's cursor; with it (the
// header, or ?last_event_id= for clients that cannot set headers) the stream
// first copies the rows after it from the log, then switches to the live
// feed, skipping rows it already copied: no gap. Rows sent after the id
// (a token's changes delivered ahead of their log order) are sent again:
// each token's changes always in order, at least once across a resume.
// Comments (": ping")
// keep idle connections open. A client that falls more than the buffer
// behind gets a final "dropped" event and the stream ends; the stream also
// ends when the pod shuts down. At most MaxStreams streams are open at once;
// past that a stream is refused with 503 before anything else is done.
type streamer struct {
	src  EventSource
	opts StreamOptions
	// pools picks the pools a request streams (nil: every pool), or fails
	// with ErrPoolNotFound.
	pools func(c *gin.Context) (map[string]bool, error)
	// open counts the streams being served, over every stream route of the
	// pod (MaxStreams is per pod).
	open *atomic.Int64
}

// stream serves the event stream of the pools that pools picks.
func (h *handlers) stream(pools func(c *gin.Context) (map[string]bool, error)) gin.HandlerFunc {
	return (&streamer{src: h.opts.Events, opts: h.opts.Stream.withDefaults(), pools: pools, open: &h.openStreams}).serve
}

// routePool picks the pool of a token route's stream: /tokens/events
// streams pool default, /pools/{pool}/tokens/events that pool.
func (h *handlers) routePool(c *gin.Context) (map[string]bool, error) {
	name := poolOf(c)
	if name == "" {
		return map[string]bool{tokens.DefaultPool: true}, nil // always exists
	}
	if err := h.svc.CheckPool(c.Request.Context(), name); err != nil {
		return nil, err
	}
	return map[string]bool{name: true}, nil
}

// queryPools picks the pools of GET /events: those named by ?pool= (each
// must exist), or when none is named every pool the caller may use (every
// pool for a caller not limited to some).
func (h *handlers) queryPools(c *gin.Context) (map[string]bool, error) {
	names := namedPools(c)
	if len(names) == 0 {
		p := principalOf(c)
		if p.AllPools() {
			return nil, nil
		}
		pools := make(map[string]bool, len(p.Pools))
		for _, name := range p.Pools {
			pools[name] = true
		}
		return pools, nil
	}
	pools := make(map[string]bool, len(names))
	for _, name := range names {
		if err := h.svc.CheckPool(c.Request.Context(), name); err != nil {
			return nil, err
		}
		pools[name] = true
	}
	return pools, nil
}

// maxChunk bounds how much the stream buffers before it writes and flushes.
const maxChunk = 64 << 10

func (s *streamer) serve(c *gin.Context) {
	select {
	case <-s.src.Done():
		writeError(c, errStreamClosed)
		return
	default:
	}
	if s.open.Add(1) > int64(s.opts.MaxStreams) {
		s.open.Add(-1)
		writeError(c, errTooManyStreams)
		return
	}
	defer s.open.Add(-1)
	kinds, err := events.ParseKinds(c.QueryArray("kind"))
	if err != nil {
		writeError(c, err)
		return
	}
	pools, err := s.pools(c)
	if err != nil {
		writeError(c, err)
		return
	}
	filter := events.Filter{Kinds: kinds, Pools: pools}
	resumeFrom, resume := c.GetHeader("Last-Event-ID"), false
	if resumeFrom == "" {
		resumeFrom = c.Query("last_event_id")
	}
	// last is the log position up to which every row has been sent (the
	// cursor of the copy, then of the feed); lastID the id last sent.
	var last, lastID events.Position
	if resumeFrom != "" {
		if last, err = events.ParsePosition(resumeFrom); err != nil {
			writeError(c, fmt.Errorf("Last-Event-ID: %w", err))
			return
		}
		resume, lastID = true, last
	}
	ctx := c.Request.Context()
	access := streamAccessOf(ctx)
	if resume && access.ResumeWindow > 0 && !s.shallow(c, last, access.ResumeWindow) {
		return
	}
	w := newSSEWriter(c, s.opts.WriteTimeout)
	w.redact = access.Redact
	defer w.close()
	metrics.EventStreams().Inc()
	defer metrics.EventStreams().Dec()

	if resume {
		// Copy the bulk of the backlog before subscribing, so that a long
		// backlog cannot overflow the subscription's buffer.
		w.open()
		for {
			cur, err := s.src.Cursor(ctx)
			if err != nil || !last.Before(cur) {
				break
			}
			n, err := s.copyLog(ctx, w, filter, &last, &lastID, cur)
			if err != nil {
				s.endBroken(ctx, err)
				return
			}
			if n < s.opts.Batch {
				break
			}
		}
	}
	sub, cur, err := s.src.Subscribe(ctx, filter)
	if err != nil {
		if !resume {
			writeError(c, errStreamClosed)
		}
		return
	}
	defer sub.Close()
	if resume {
		if last.Before(cur) {
			if _, err := s.copyLog(ctx, w, filter, &last, &lastID, cur); err != nil {
				s.endBroken(ctx, err)
				return
			}
		}
	} else {
		last, lastID = cur, cur
		w.open() // only now: a client that has read the opening knows it is subscribed
	}
	if err := w.flush(); err != nil {
		return
	}

	heartbeat := time.NewTicker(s.opts.Heartbeat)
	defer heartbeat.Stop()
	var batch []events.Event
	for {
		select {
		case <-sub.Ready():
			var open bool
			batch, open = sub.Take(batch[:0])
			// The feed's rows all lie after the cursor at Subscribe; those
			// up to last were copied from the log already.
			for _, ev := range batch {
				if last.Before(ev.Pos) {
					w.event(ev)
					lastID = ev.Mark
				}
				if w.size() >= maxChunk {
					if err := w.flush(); err != nil {
						return
					}
				}
			}
			if cap(batch) > batchKeep {
				batch = nil // a burst's array goes; an idle stream keeps a few KB
			} else {
				clear(batch) // let the events go
			}
			if !open {
				if sub.Dropped() {
					w.dropped(lastID)
				}
				w.flush() //nolint:errcheck // the stream ends either way
				return
			}
		case <-heartbeat.C:
			w.comment("ping")
		case <-ctx.Done():
			return
		}
		if err := w.flush(); err != nil {
			return
		}
	}
}

// batchKeep is the most events a stream's batch keeps room for between
// takes.
const batchKeep = 64

// shallow reports whether a resume from last misses only events younger
// than window; otherwise it answers 403. The oldest missed event decides.
func (s *streamer) shallow(c *gin.Context, last events.Position, window time.Duration) bool {
	ctx := c.Request.Context()
	cur, err := s.src.Cursor(ctx)
	if err != nil {
		writeError(c, err)
		return false
	}
	if !last.Before(cur) {
		return true
	}
	chunk, err := s.src.ReadUpTo(ctx, last, cur, 1)
	if err != nil {
		writeError(c, fmt.Errorf("%w: the change log cannot be read now", tokens.ErrUnavailable))
		return false
	}
	if evs := chunk.Events; len(evs) > 0 && time.Since(evs[0].At) > window {
		writeError(c, fmt.Errorf("%w: this role may resume at most %s back; reconnect without Last-Event-ID", auth.ErrForbidden, window))
		return false
	}
	return true
}

// copyLog sends the selected rows after *last and not past until, read from
// the log in chunks, moving *last (the log cursor) and *lastID (the id last
// sent); it returns how many rows it read.
func (s *streamer) copyLog(ctx context.Context, w *sseWriter, filter events.Filter, last, lastID *events.Position, until events.Position) (int, error) {
	total := 0
	for {
		select {
		case <-s.src.Done():
			return total, events.ErrClosed
		default:
		}
		chunk, err := s.src.ReadUpTo(ctx, *last, until, s.opts.Batch)
		if err != nil {
			return total, err
		}
		total += len(chunk.Events)
		for _, ev := range chunk.Events {
			if filter.Has(ev) {
				w.event(ev)
				*lastID = ev.Mark
			}
		}
		*last = chunk.Cursor
		if err := w.flush(); err != nil {
			return total, err
		}
		if !chunk.More {
			return total, nil
		}
	}
}

// endBroken ends a stream whose backlog could not be read. Headers are sent
// already, so the client only sees the stream end; it resumes from the last
// id it received.
func (s *streamer) endBroken(ctx context.Context, err error) {
	if ctx.Err() == nil && !errors.Is(err, events.ErrClosed) {
		slog.WarnContext(ctx, "event stream ended while copying the backlog", "error", err)
	}
}

// bufKeep is the most bytes a stream's write buffer keeps between writes
// unless a write filled a quarter of it.
const bufKeep = 4 << 10

// sseWriter buffers SSE lines and writes them with a deadline, so that a
// client that stops reading cannot hold a handler forever.
type sseWriter struct {
	c       *gin.Context
	rc      *http.ResponseController
	timeout time.Duration
	buf     []byte
	opened  bool
	redact  bool // token_fp instead of token values
}

func newSSEWriter(c *gin.Context, timeout time.Duration) *sseWriter {
	return &sseWriter{c: c, rc: http.NewResponseController(c.Writer), timeout: timeout}
}

// open sends the headers and an opening comment (with the client's retry
// delay) on the next flush.
func (w *sseWriter) open() {
	if w.opened {
		return
	}
	w.opened = true
	h := w.c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.c.Status(http.StatusOK)
	w.buf = append(w.buf, "retry: 1000\n: ok\n\n"...)
}

func (w *sseWriter) event(ev events.Event) {
	w.buf = append(w.buf, "id: "...)
	w.buf = append(w.buf, ev.Mark.String()...)
	w.buf = append(w.buf, "\nevent: "...)
	w.buf = append(w.buf, ev.Kind...)
	w.buf = append(w.buf, "\ndata: "...)
	if w.redact {
		w.buf = append(w.buf, ev.RedactedData()...)
	} else {
		w.buf = append(w.buf, ev.Data()...)
	}
	w.buf = append(w.buf, "\n\n"...)
}

func (w *sseWriter) comment(text string) {
	w.buf = append(w.buf, ": "...)
	w.buf = append(w.buf, text...)
	w.buf = append(w.buf, "\n\n"...)
}

// dropped is the final event of a stream that fell too far behind. It has
// no id, so the client's Last-Event-ID stays at the last event it received.
func (w *sseWriter) dropped(last events.Position) {
	data, _ := json.Marshal(map[string]string{
		"reason":        "slow_consumer",
		"message":       "the stream fell too far behind and was dropped; reconnect with Last-Event-ID to resume",
		"last_event_id": last.String(),
	})
	w.buf = append(w.buf, "event: dropped\ndata: "...)
	w.buf = append(w.buf, data...)
	w.buf = append(w.buf, "\n\n"...)
}

func (w *sseWriter) size() int { return len(w.buf) }

// flush writes what is buffered and flushes it to the client.
func (w *sseWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout)) // unsupported only by test recorders
	_, err := w.c.Writer.Write(w.buf)
	if cap(w.buf) > bufKeep && len(w.buf) < cap(w.buf)/4 {
		w.buf = nil // mostly unused: an idle stream keeps a few KB, a busy one its buffer
	} else {
		w.buf = w.buf[:0]
	}
	if err != nil {
		return err
	}
	return w.rc.Flush()
}

// close lifts the write deadline, in case the connection is reused.
func (w *sseWriter) close() {
	if w.opened {
		_ = w.rc.SetWriteDeadline(time.Time{})
	}
}
