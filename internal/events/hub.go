package events

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is returned once the pod's events layer has shut down.
var ErrClosed = errors.New("events: closed")

// Hub fans events out to the subscribers of one pod. The reader publishes
// each batch once; the hub appends every event to the queue of each
// subscriber whose filter selects it, without waiting for anyone, so a slow
// subscriber never holds up the reader or the others: when its queue would
// pass the limit it is dropped (it ends, Dropped true). A queue grows only
// as far as its subscriber lags, so an idle subscriber costs next to
// nothing. Observers (the long-poll's wait queue) are called with each batch
// and must not block either.
type Hub struct {
	limit int // events a subscriber may fall behind before it is dropped
	// wake asks the reader to catch up at once (the reader's Kick); called
	// when a subscriber arrives, since the cursor may be a little behind
	// while nobody needs events. Set before use; nil in unit tests.
	wake func()

	done chan struct{} // closed by Close

	mu        sync.Mutex
	cursor    Position // the last position published (or the start)
	ready     chan struct{}
	isReady   bool
	closed    bool
	subs      map[*Subscription]struct{}
	observers []observer
	heldRings []func()
}

// observer is an in-process consumer besides the subscriptions: f takes each
// batch, and interested says whether it needs events at all right now.
type observer struct {
	f          func([]Event)
	interested func() bool
}

// NewHub returns a hub whose subscribers may fall up to limit events
// behind. The reader feeds it (Start, Publish); on its own it is an
// in-memory fan-out.
func NewHub(limit int) *Hub {
	return &Hub{limit: limit, ready: make(chan struct{}), done: make(chan struct{}), subs: make(map[*Subscription]struct{})}
}

// Subscription is one subscriber's view of the stream: it delivers, in log
// order, every selected event after the position Subscribe returned (Take,
// or Next). It ends by Close, by the hub's shutdown, or by a drop for
// slowness (then Dropped reports true); the events queued before the end
// are still delivered.
type Subscription struct {
	filter Filter
	hub    *Hub
	// signal holds a value while events are queued or the subscription has
	// ended (it may also hold one after a Take emptied the queue).
	signal chan struct{}
	// Guarded by hub.mu. The queue starts empty and grows as far as the
	// subscriber lags (up to the hub's limit); Take lets a large one go.
	queue   []Event
	closed  bool
	dropped bool
}

// queueKeep is the largest queue capacity a Take keeps for reuse: an idle
// subscriber must cost a few KB, not what its busiest moment needed.
const queueKeep = 64

// Ready receives a value when events are queued or the subscription has
// ended; then Take.
func (s *Subscription) Ready() <-chan struct{} { return s.signal }

// Take appends the queued events to dst, in order, and returns it; open is
// false once the subscription has ended (the events returned with it are
// the last).
func (s *Subscription) Take(dst []Event) (evs []Event, open bool) {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	dst = append(dst, s.queue...)
	if cap(s.queue) > queueKeep {
		s.queue = nil
	} else {
		clear(s.queue) // let the events go
		s.queue = s.queue[:0]
	}
	return dst, !s.closed
}

// Next returns the next event, waiting for it; ok is false once the
// subscription has ended and every queued event has been returned, or when
// ctx ends. For in-process consumers that take one event at a time.
func (s *Subscription) Next(ctx context.Context) (ev Event, ok bool) {
	for {
		s.hub.mu.Lock()
		if len(s.queue) > 0 {
			ev = s.queue[0]
			s.queue[0] = Event{}
			s.queue = s.queue[1:]
			s.hub.mu.Unlock()
			return ev, true
		}
		closed := s.closed
		s.hub.mu.Unlock()
		if closed {
			return Event{}, false
		}
		select {
		case <-s.signal:
		case <-ctx.Done():
			return Event{}, false
		}
	}
}

// notify sets the signal, without waiting.
func (s *Subscription) notify() {
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// Start sets the first cursor and opens the hub for subscribers.
func (h *Hub) Start(cursor Position) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.isReady || h.closed {
		return
	}
	h.cursor = cursor
	h.isReady = true
	close(h.ready)
}

// waitReady waits until the reader has found its first cursor.
func (h *Hub) waitReady(ctx context.Context) error {
	select {
	case <-h.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Subscribe adds a subscriber for the events f selects and returns the cursor
// at that moment: the subscriber receives every selected event after it. It
// waits for the reader's first cursor at start-up.
func (h *Hub) Subscribe(ctx context.Context, f Filter) (*Subscription, Position, error) {
	if err := h.waitReady(ctx); err != nil {
		return nil, Position{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, Position{}, ErrClosed
	}
	s := &Subscription{filter: f, hub: h, signal: make(chan struct{}, 1)}
	h.subs[s] = struct{}{}
	if h.wake != nil {
		h.wake()
	}
	return s, h.cursor, nil
}

// Cursor returns the position of the last event published, waiting for the
// reader's first cursor at start-up.
func (h *Hub) Cursor(ctx context.Context) (Position, error) {
	if err := h.waitReady(ctx); err != nil {
		return Position{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return Position{}, ErrClosed
	}
	return h.cursor, nil
}

// Close ends the subscription. It is safe to call more than once and after
// the hub has ended it.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.endLocked(s, false)
}

// Dropped reports whether the hub ended the subscription because it fell
// too far behind.
func (s *Subscription) Dropped() bool {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.dropped
}

func (h *Hub) endLocked(s *Subscription, dropped bool) {
	if s.closed {
		return
	}
	s.closed, s.dropped = true, dropped
	delete(h.subs, s)
	s.notify()
}

// Observe registers f to be called with every published batch, after the
// subscribers have been served; interested says whether f needs events at
// all right now (while none is interested and no one subscribes, the reader
// skips rows). Neither may block.
func (h *Hub) Observe(f func([]Event), interested func() bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.observers = append(h.observers, observer{f, interested})
}

// ObserveHeldRings registers f to be called when the doorbell rang while the
// log is held back behind a running transaction: changes have committed that
// no batch can show yet. f must not block.
func (h *Hub) ObserveHeldRings(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.heldRings = append(h.heldRings, f)
}

// heldRing calls the observers of held-back rings.
func (h *Hub) heldRing() {
	h.mu.Lock()
	fs := h.heldRings
	h.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// wantedLocked reports whether anyone needs events now.
func (h *Hub) wantedLocked() bool {
	if len(h.subs) > 0 {
		return true
	}
	for _, o := range h.observers {
		if o.interested() {
			return true
		}
	}
	return false
}

// wanted reports whether anyone needs events now.
func (h *Hub) wanted() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.wantedLocked()
}

// skipTo moves the cursor to head without delivering the rows before it,
// provided that still nobody needs events; it reports whether it did. The
// check and the move are atomic with Subscribe, so a subscriber either
// counts here or starts at head. Head must have been read before the call:
// an observer that becomes interested afterwards (a waiting assign) looks at
// the database after head was read, and so sees every change before it.
func (h *Hub) skipTo(head Position) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.wantedLocked() {
		return false
	}
	if h.cursor.Before(head) {
		h.cursor = head
	}
	return true
}

// Publish delivers a batch read from the log, in delivery order, and moves
// the cursor to its last row in log order (the read's cursor: the reader
// delivers a prefix of each read).
func (h *Hub) Publish(batch []Event) {
	if len(batch) == 0 {
		return
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	for _, ev := range batch {
		if h.cursor.Before(ev.Pos) {
			h.cursor = ev.Pos
		}
	}
	for s := range h.subs {
		queued := len(s.queue)
		for _, ev := range batch {
			if !s.filter.Has(ev) {
				continue
			}
			if len(s.queue) >= h.limit {
				h.endLocked(s, true)
				break
			}
			s.queue = append(s.queue, ev)
		}
		if len(s.queue) > queued {
			s.notify()
		}
	}
	observers := h.observers
	h.mu.Unlock()
	for _, o := range observers {
		o.f(batch)
	}
}

// Subscribers returns how many subscriptions are open.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Done is closed when the hub is.
func (h *Hub) Done() <-chan struct{} { return h.done }

// Close ends every subscription (not as a drop) and refuses new ones.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.done)
	for s := range h.subs {
		h.endLocked(s, false)
	}
	if !h.isReady {
		close(h.ready) // waiters of waitReady then find the hub closed
		h.isReady = true
	}
}
