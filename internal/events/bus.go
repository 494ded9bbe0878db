package events

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenlease/tokenlease/db"
)

// Config tunes the events layer; zero values take the defaults.
type Config struct {
	BellInterval time.Duration // least time between two doorbell rings (5ms)
	PollInterval time.Duration // safety-net read of the log without a ring (1s)
	ReadGap      time.Duration // least time between two reads of the log (5ms)
	BatchSize    int           // rows per read of the log (1000)
	StreamBuffer int           // events a stream may fall behind before it is dropped (4096)
	Heartbeat    time.Duration // comment on an idle stream (15s)
	WriteTimeout time.Duration // longest write to a stream's client (10s)
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
	def(&c.Heartbeat, 15*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
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
// the log reader, the hub, and what serves from it (the SSE stream and the
// long-poll). It implements tokens.ChangeNotifier.
type Bus struct {
	hub      *Hub
	log      *Log
	bell     *bell
	reader   *reader
	listener *listener
	streamer *streamer
	waiters  []*Waiter // guarded by mu
	logger   *slog.Logger

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
	done    chan struct{}
}

// New builds the events layer on pool. Start runs it; Close ends it.
func New(pool *pgxpool.Pool, cfg Config) *Bus {
	cfg = cfg.withDefaults()
	q := db.New(pool)
	b := &Bus{
		hub:    newHub(cfg.StreamBuffer),
		log:    NewLog(q),
		bell:   newBell(q, cfg.BellInterval, cfg.Logger),
		logger: cfg.Logger,
		done:   make(chan struct{}),
	}
	direct := cfg.Direct
	if direct == nil {
		direct = pool.Config().ConnConfig
	}
	readerConn := readerConnConfig(direct)
	dial := func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, readerConn) }
	b.reader = newReader(dial, b.hub, cfg.BatchSize, cfg.PollInterval, cfg.ReadGap, cfg.Logger)
	b.hub.wake = b.reader.Kick
	b.listener = newListener(direct, b.reader.Kick, cfg.IdlePing, cfg.Logger)
	b.streamer = &streamer{
		hub: b.hub, log: b.log, done: b.done, batch: cfg.BatchSize,
		heartbeat: cfg.Heartbeat, writeTimeout: cfg.WriteTimeout, logger: cfg.Logger,
	}
	return b
}

// Changed implements tokens.ChangeNotifier: it asks the doorbell to ring. It
// never blocks.
func (b *Bus) Changed() { b.bell.Changed() }

// Handler serves GET /tokens/events.
func (b *Bus) Handler() gin.HandlerFunc { return b.streamer.serve }

// Start runs the doorbell, the LISTEN connection and the reader until Close,
// or until ctx ends (which closes the bus).
func (b *Bus) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return errors.New("events: started twice")
	}
	select {
	case <-b.done:
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
		case <-b.done:
		}
	}()
	return nil
}

// Close ends open streams and waiting assigns (which answer 503, unless
// their claim is under way), then stops the background work and waits for
// it. It is safe to call more than once, and without Start.
func (b *Bus) Close() {
	b.once.Do(func() {
		close(b.done)
		b.hub.close()
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
func (b *Bus) Subscribe(ctx context.Context, kinds KindSet) (*Subscription, Position, error) {
	return b.hub.Subscribe(ctx, kinds)
}

// Stats describe the events layer, for tests and diagnostics.
type Stats struct {
	Cursor      Position // the last position read
	Reads       int64    // reads of rows from the log
	Skips       int64    // moves to the head of the log while nobody needed events
	Rings       int64    // doorbell rings sent
	Connections int64    // LISTEN connections made (reconnects are the excess over one)
	Subscribers int
	Waiters     int // assigns waiting for a token
}

// Stats returns the current figures.
func (b *Bus) Stats() Stats {
	b.hub.mu.Lock()
	cur := b.hub.cursor
	b.hub.mu.Unlock()
	b.mu.Lock()
	waiting := 0
	for _, w := range b.waiters {
		waiting += w.queue.len()
	}
	b.mu.Unlock()
	return Stats{
		Waiters:     waiting,
		Cursor:      cur,
		Reads:       b.reader.reads.Load(),
		Skips:       b.reader.skips.Load(),
		Rings:       b.bell.rings.Load(),
		Connections: b.listener.sessions.Load(),
		Subscribers: b.hub.subscribers(),
	}
}
