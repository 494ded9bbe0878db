package tokens

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenlease/tokenlease/db"
)

// Settings are the knobs of the domain, taken from the configuration.
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
}

// ChangeNotifier hears of committed changes so that the events layer can ring
// its doorbell. Changed must not block.
type ChangeNotifier interface {
	Changed()
}

// Service carries out every operation on tokens. It is safe for concurrent use.
type Service struct {
	pool     *pgxpool.Pool
	q        *db.Queries
	settings Settings
	notifier ChangeNotifier
	// With batching on: the batchers, and the queries (on their own pool)
	// of the batched statements.
	assigns    *batcher[AssignRequest, Lease]
	unblocks   *batcher[leaseRef, struct{}]   // nil without batching
	keepAlives *batcher[leaseRef, TokenState] // nil without batching
	batchPool  *pgxpool.Pool
	batchQ     *db.Queries
}

// counterSlots is the number of rows in token_counters; writes spread over
// them so that no single row serialises the claim path.
const counterSlots = 16

// sweepSlot is the counter row of the sweeps alone (migration 00002): a
// sweep holds its row locked until it commits, and on a hot-path slot every
// claim or release batch that drew that slot would wait for it.
const sweepSlot int16 = counterSlots

// growthSlot is the counter row of generate and import alone (migration
// 00003), for the same reason: growth holds it for its whole transaction.
const growthSlot int16 = counterSlots + 1

// NewService returns a Service on pool. notifier may be nil.
func NewService(pool *pgxpool.Pool, settings Settings, notifier ChangeNotifier) *Service {
	s := &Service{pool: pool, q: db.New(pool), settings: settings, notifier: notifier}
	s.initBatchers()
	return s
}

// Settings returns the settings the service runs with.
func (s *Service) Settings() Settings { return s.settings }

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
	return fmt.Errorf("tokens: %w", err)
}
