package tokens

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenlease/tokenlease/internal/testdb"
)

// testBundle is what a test of the domain works with (River's style): a
// fresh, migrated database and a pod's service on it.
type testBundle struct {
	Conns *pgxpool.Pool
	Svc   *Service
}

// setup returns a bundle whose service runs with the test settings (batching
// on), each adjusted by adjust in turn.
func setup(tb testing.TB, adjust ...func(*Settings)) *testBundle {
	tb.Helper()
	b := &testBundle{Conns: testdb.NewPool(tb)}
	b.Svc = b.Pod(tb, "pod-a", adjust...)
	return b
}

// Pod returns the service of another pod on the bundle's database.
func (b *testBundle) Pod(tb testing.TB, name string, adjust ...func(*Settings)) *Service {
	tb.Helper()
	s := Settings{
		LeaseTTL: time.Minute, MaxLeaseTTL: time.Hour, KeepaliveTTL: time.Hour,
		MaxTokens: 1_000_000, Pod: name, Batching: true,
	}
	for _, f := range adjust {
		f(&s)
	}
	svc := NewService(b.Conns, s, nil)
	tb.Cleanup(svc.Close)
	return svc
}

// Setup is setup for the black-box tests of package tokens_test.
var Setup = setup
