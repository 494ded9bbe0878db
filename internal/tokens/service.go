package tokens

import (
	"context"
	"errors"
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
	// BatchPerPool sends one assign and one unblock statement per pool of a
	// round instead of one of each for all its pools, so that no statement
	// touches two pools (a database distributed by pool,
	// BATCH_ACROSS_POOLS=off; see docs/SCALING.md).
	BatchPerPool bool
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

// Counter rows (token_counters, migration 00030): every hot-path write adds
// to its own backend's row of the pool (slot -pg_backend_pid(), chosen in
// SQL), so no two transactions ever wait for one counter row; the sweep folds
// the rows of exited backends (FoldCounterRows). Stats sum a pool's rows.

// fixedSlots is the number of fixed counter rows each pool gets (PutPool):
// 0..15, the hot-path slots of earlier versions, which pods of the previous
// version keep writing during a rolling upgrade, then the sweeps' and
// growth's.
const fixedSlots = 18

// sweepSlot is the counter row of the sweeps alone (migration 00002): a
// sweep holds its row locked until it commits. It also takes the folded
// rows of exited backends.
const sweepSlot int16 = 16

// growthSlot is the counter row of generate and import alone (migration
// 00003): growth holds it for its whole transaction.
const growthSlot int16 = 17

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

func millis(d time.Duration) int64 { return d.Milliseconds() }

// notFoundIfNoRows turns the "no row" of a lookup into ErrNotFound.
func notFoundIfNoRows(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return storageError("", err)
}

// RegisterPod adds the pod's name to the audit log's dictionary in a
// statement of its own, so that the hot statements only look it up (a name
// added by a hot statement on first use would make the pod's concurrent
// statements wait for that statement's transaction).
func (s *Service) RegisterPod(ctx context.Context) error {
	if err := s.q.RegisterAuditName(ctx, s.settings.Pod); err != nil {
		return storageError("register the pod's audit name", err)
	}
	return nil
}
