package tokens

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenlease/tokenlease/db"
)

// Settings are the knobs of the domain; internal/app fills them from the
// configuration.
type Settings struct {
	LeaseTTL     time.Duration // lease length when an assign names none
	MaxLeaseTTL  time.Duration // the longest lease an assign may ask for
	KeepaliveTTL time.Duration // how long a token lives without a keep-alive
	MaxTokens    int64         // pool cap, counted over live and unswept rows
	Pod          string        // written to every audit row this pod makes
	// Batching coalesces this pod's concurrent assigns, unblocks and
	// keep-alives into one statement per kind while another is in flight
	// (BATCHING=on|off).
	Batching bool
	BatchMax int // requests per batched statement; 0 means DefaultBatchMax
	// BatchWindow caps how long, under load, a round that finds its batcher
	// idle waits for the callers of the round just answered (0: never).
	BatchWindow time.Duration
}

// ChangeNotifier hears of committed changes so that the events layer can ring
// its doorbell. Changed must not block.
type ChangeNotifier interface {
	Changed()
}

// Service carries out every operation on tokens. It is safe for concurrent use.
type Service struct {
	conns    *pgxpool.Pool // the pod's connections
	q        *db.Queries
	settings Settings
	notifier ChangeNotifier
	pools    poolCache
	// With batching on: the pod's batchers, and the queries (on their own
	// connections) of the batched statements.
	batching   bool
	batchMax   int
	batchers   podBatchers
	batchConns *pgxpool.Pool
	batchQ     *db.Queries
}

// counterSlots is the number of rows in token_counters; writes spread over
// them so that no single row serialises the claim path.
const counterSlots = 16

// growthSlot is the counter row of generate and import alone (migration
// 00003), for the same reason: growth holds it for its whole transaction.
const growthSlot int16 = counterSlots + 1

// allSlots is the number of counter rows of each pool: the hot-path slots,
// the sweeps' and growth's.
const allSlots = counterSlots + 2

// sweepSlot is the counter row of the sweeps alone (migration 00002): a
// sweep holds its row locked until it commits, and on a hot-path slot every
// claim or release batch that drew that slot would wait for it.
const sweepSlot int16 = counterSlots

// NewService returns a Service on the connections conns. notifier may be nil.
func NewService(conns *pgxpool.Pool, settings Settings, notifier ChangeNotifier) *Service {
	s := &Service{conns: conns, q: db.New(conns), settings: settings, notifier: notifier}
	s.initBatchers()
	return s
}

func (s *Service) changed() {
	if s.notifier != nil {
		s.notifier.Changed()
	}
}

func randomSlot() int16 { return int16(rand.IntN(counterSlots)) }

func millis(d time.Duration) int64 { return d.Milliseconds() }

// notFoundIfNoRows turns the "no row" of a lookup into ErrNotFound.
func notFoundIfNoRows(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return storageError("", err)
}
