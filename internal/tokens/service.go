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
}

// counterSlots is the number of rows in token_counters; writes spread over
// them so that no single row serialises the claim path.
const counterSlots = 16

// NewService returns a Service on pool. notifier may be nil.
func NewService(pool *pgxpool.Pool, settings Settings, notifier ChangeNotifier) *Service {
	return &Service{pool: pool, q: db.New(pool), settings: settings, notifier: notifier}
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
