package tokens_test

// A claim, a lookup and an unblock in a small pool stay index probes while
// another pool holds many tokens: the pool leads every hot index.

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenlease/tokenlease/internal/testdb"
	"github.com/tokenlease/tokenlease/internal/tokens"
)

// statementCapture records the text and arguments of the statements the
// service sends, so that the test can EXPLAIN exactly those.
type statementCapture struct {
	mu   sync.Mutex
	seen map[string]pgx.TraceQueryStartData
}

func (c *statementCapture) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if i := strings.Index(d.SQL, "-- name: "); i >= 0 {
		name := strings.Fields(d.SQL[i+len("-- name: "):])[0]
		c.mu.Lock()
		c.seen[name] = d
		c.mu.Unlock()
	}
	return ctx
}

func (c *statementCapture) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *statementCapture) get(t *testing.T, name string) pgx.TraceQueryStartData {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.seen[name]
	if !ok {
		t.Fatalf("the service sent no %s", name)
	}
	return d
}

// buffersOf runs EXPLAIN (ANALYZE, BUFFERS) of a captured statement in a
// transaction that is rolled back, and returns the shared buffers it touched.
func buffersOf(t *testing.T, pool *pgxpool.Pool, d pgx.TraceQueryStartData) int64 {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // nothing to keep
	var out []byte
	if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+d.SQL, d.Args...).Scan(&out); err != nil {
		t.Fatalf("explain: %v", err)
	}
	var plan []struct {
		Plan struct {
			Hit  int64 `json:"Shared Hit Blocks"`
			Read int64 `json:"Shared Read Blocks"`
		}
	}
	if err := json.Unmarshal(out, &plan); err != nil || len(plan) != 1 {
		t.Fatalf("explain output: %v: %s", err, out)
	}
	return plan[0].Plan.Hit + plan[0].Plan.Read
}

func TestSmallPoolStaysAnIndexProbeBesideABigOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(testdb.NewURL(t))
	if err != nil {
		t.Fatal(err)
	}
	capture := &statementCapture{seen: map[string]pgx.TraceQueryStartData{}}
	cfg.ConnConfig.Tracer = capture
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	svc := tokens.NewService(pool, tokens.Settings{
		LeaseTTL: time.Minute, MaxLeaseTTL: time.Hour, KeepaliveTTL: time.Hour, MaxTokens: 10_000_000, Pod: "probe",
	}, nil)
	t.Cleanup(svc.Close)

	for _, name := range []string{"big", "small"} {
		if _, _, err := svc.PutPool(ctx, name, tokens.PoolSettings{}); err != nil {
			t.Fatal(err)
		}
	}
	// 200,000 tokens in pool big: free ones, and lapsed leases the claim's
	// fallback branch could stumble over if it were not led by the pool.
	const bigSize = 200_000
	if _, err := pool.Exec(ctx, `
		INSERT INTO tokens (pool_id, value, alive_until, lease_id, lease_ttl, lease_expires_at)
		SELECT p.id, 'big-' || g, now() + interval '1 hour',
		       CASE WHEN g % 2 = 0 THEN nextval('lease_id_seq') END,
		       CASE WHEN g % 2 = 0 THEN interval '1 second' END,
		       CASE WHEN g % 2 = 0 THEN now() - interval '1 minute' END
		FROM pools p, generate_series(1, $1::int) g WHERE p.name = 'big'`, bigSize); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Generate(ctx, "small", 10); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE tokens"); err != nil {
		t.Fatal(err)
	}

	l, err := svc.Assign(ctx, tokens.AssignRequest{Pool: "small"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Get(ctx, "small", l.Token); err != nil {
		t.Fatal(err)
	}
	if err := svc.Unblock(ctx, "small", l.Token, &l.LeaseID); err != nil {
		t.Fatal(err)
	}
	// A few hundred buffers at most: the big pool alone spans thousands of
	// heap and index pages.
	const bound = 150
	for _, name := range []string{"ClaimRandomFree", "GetToken", "ReleaseLease"} {
		if n := buffersOf(t, pool, capture.get(t, name)); n > bound {
			t.Errorf("%s in the small pool touched %d buffers (bound %d) beside %d tokens in another pool", name, n, bound, bigSize)
		} else {
			t.Logf("%s in the small pool: %d buffers", name, n)
		}
	}
}
