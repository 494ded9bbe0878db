package events

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenlease/tokenlease/db/eventsdb"
)

// Config tunes the events layer; zero values take the defaults.
type Config struct {
	BellInterval time.Duration // least time between two doorbell rings (5ms)
	PollInterval time.Duration // safety-net read of the log without a ring (1s)
	ReadGap      time.Duration // least time between two reads of the log (5ms)
	BatchSize    int           // rows per read of the log (1000)
	StreamBuffer int           // events a subscriber may fall behind before it is dropped (4096); its queue grows only as far as it lags
	IdlePing     time.Duration // ping of an idle LISTEN connection (30s)
	Logger       *slog.Logger
	// Direct configures the LISTEN and reader connections, which hold a
	// session of their own and so must not go through a transaction pooler;
	// nil: the pool's connection settings.
	Direct *pgx.ConnConfig
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.BellInterval, 5*time.Millisecond)
	def(&c.PollInterval, time.Second)
	def(&c.ReadGap, 5*time.Millisecond)
	def(&c.IdlePing, 30*time.Second)
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.StreamBuffer <= 0 {
		c.StreamBuffer = 4096
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Bus is the events layer of one pod: the doorbell, the LISTEN connection,
// the log reader and the hub. It implements tokens.ChangeNotifier (through
// Changed); the event stream (internal/httpapi) and the long-poll
// (internal/longpoll) consume it.
type Bus struct {
	hub      *Hub
	log      *Log
	bell     *bell
	reader   *reader
	listener *listener

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
}

// New builds the events layer on the connections conns. Start runs it; Close
// ends it.
func New(conns *pgxpool.Pool, cfg Config) *Bus {
	cfg = cfg.withDefaults()
	q := eventsdb.New(conns)
	b := &Bus{
		hub:  NewHub(cfg.StreamBuffer),
		log:  NewLog(q),
		bell: newBell(q, cfg.BellInterval, cfg.Logger),
	}
	direct := cfg.Direct
	if direct == nil {
		direct = conns.Config().ConnConfig
	}
	readerConn := readerConnConfig(direct)
	dial := func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, readerConn) }
	b.reader = newReader(dial, b.hub, cfg.BatchSize, cfg.PollInterval, cfg.ReadGap, cfg.Logger)
	readerConn.Tracer = b.reader
	b.hub.wake = b.reader.Kick
	b.listener = newListener(direct, b.reader.Rang, cfg.IdlePing, cfg.Logger)
	return b
}

// Changed implements tokens.ChangeNotifier: it asks the doorbell to ring. It
// never blocks.
func (b *Bus) Changed() { b.bell.Changed() }

// Start runs the doorbell, the LISTEN connection and the reader until Close,
// or until ctx ends (which closes the bus).
func (b *Bus) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return errors.New("events: started twice")
	}
	select {
	case <-b.hub.Done():
		return ErrClosed
	default:
	}
	b.started = true
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.cancel = cancel
	for _, run := range []func(context.Context){b.reader.run, b.listener.run, b.bell.run} {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			run(runCtx)
		}()
	}
	go func() {
		select {
		case <-ctx.Done():
			b.Close()
		case <-b.hub.Done():
		}
	}()
	return nil
}

// Close ends the subscriptions and closes Done (so that open streams and
// waiting assigns end), then stops the background work and waits for it. It
// is safe to call more than once, and without Start.
func (b *Bus) Close() {
	b.once.Do(func() {
		b.hub.Close()
		b.mu.Lock()
		cancel := b.cancel
		b.started = true // no Start after Close
		b.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		b.wg.Wait()
	})
}

// Subscribe follows the live stream from now, for in-process consumers.
func (b *Bus) Subscribe(ctx context.Context, f Filter) (*Subscription, Position, error) {
	return b.hub.Subscribe(ctx, f)
}

// Cursor returns the position of the last event published (see Hub.Cursor).
func (b *Bus) Cursor(ctx context.Context) (Position, error) { return b.hub.Cursor(ctx) }

// ReadUpTo reads the log's rows after after and not past until (a position
// Cursor returned), arranged like the live reads (each token's changes in
// order): the backlog of a resumed stream.
func (b *Bus) ReadUpTo(ctx context.Context, after, until Position, limit int) (Chunk, error) {
	return b.log.ReadUpTo(ctx, after, until, limit)
}

// Done is closed when the bus closes.
func (b *Bus) Done() <-chan struct{} { return b.hub.Done() }

// Observe registers an in-process consumer of every batch (see Hub.Observe).
func (b *Bus) Observe(f func([]Event), interested func() bool) { b.hub.Observe(f, interested) }

// ObserveHeldRings registers a consumer of the doorbell's rings that the log
// cannot show yet (see Hub.ObserveHeldRings).
func (b *Bus) ObserveHeldRings(f func()) { b.hub.ObserveHeldRings(f) }

// Kick asks the reader to catch up with the log now: for an observer that
// has just become interested, since the reader idles behind the head while
// nobody is. It never blocks.
func (b *Bus) Kick() { b.reader.Kick() }

// Stats describe the events layer, for tests and diagnostics.
type Stats struct {
	Cursor      Position // the last position read
	Reads       int64    // reads of rows from the log
	Queries     int64    // statements the reader ran (reads, horizon checks, head)
	Skips       int64    // moves to the head of the log while nobody needed events
	Rings       int64    // doorbell rings sent
	Connections int64    // LISTEN connections made (reconnects are the excess over one)
	IdlePings   int64    // pings of the idle LISTEN connection answered
	Subscribers int
}

// Stats returns the current figures.
func (b *Bus) Stats() Stats {
	b.hub.mu.Lock()
	cur := b.hub.cursor
	b.hub.mu.Unlock()
	return Stats{
		Cursor:      cur,
		Reads:       b.reader.reads.Load(),
		Queries:     b.reader.queries.Load(),
		Skips:       b.reader.skips.Load(),
		Rings:       b.bell.rings.Load(),
		Connections: b.listener.sessions.Load(),
		IdlePings:   b.listener.pings.Load(),
		Subscribers: b.hub.Subscribers(),
	}
}
