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

// The batched statements of a round go out in a pipeline (pgx.BatchTracer).
func (c *statementCapture) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (c *statementCapture) TraceBatchQuery(ctx context.Context, conn *pgx.Conn, d pgx.TraceBatchQueryData) {
	c.TraceQueryStart(ctx, conn, pgx.TraceQueryStartData{SQL: d.SQL, Args: d.Args})
}

func (c *statementCapture) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// captured returns the last statement named name the service sent, if any.
func (c *statementCapture) captured(name string) (pgx.TraceQueryStartData, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.seen[name]
	return d, ok
}

func (c *statementCapture) get(t *testing.T, name string) pgx.TraceQueryStartData {
	t.Helper()
	d, ok := c.captured(name)
	if !ok {
		t.Fatalf("the service sent no %s", name)
	}
	return d
}

// buffersOf runs EXPLAIN (ANALYZE, BUFFERS) of a captured statement in a
// transaction that is rolled back, and returns the shared buffers it touched.
func buffersOf(t *testing.T, pool *pgxpool.Pool, d pgx.TraceQueryStartData) int64 {
	t.Helper()
	return buffersOfPlan(t, pool, d, false)
}

// buffersOfPlan is buffersOf with a generic plan when generic is set (the
// plan the batched statements' own connections use) or a custom one.
func buffersOfPlan(t *testing.T, pool *pgxpool.Pool, d pgx.TraceQueryStartData, generic bool) int64 {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // nothing to keep
	if generic {
		if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_generic_plan"); err != nil {
			t.Fatal(err)
		}
	}
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
		LeaseTTL: time.Minute, MaxLeaseTTL: time.Hour, KeepaliveTTL: time.Hour, MaxTokens: 10_000_000, Pod: "probe", Batching: true,
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
	const perRequestBound = 50
	for _, name := range []string{"ClaimRandomFree", "GetToken", "ReleaseLease"} {
		if n := buffersOf(t, pool, capture.get(t, name)); n > bound {
			t.Errorf("%s in the small pool touched %d buffers (bound %d) beside %d tokens in another pool", name, n, bound, bigSize)
		} else {
			t.Logf("%s in the small pool: %d buffers", name, n)
		}
	}

	// A round over both pools (one statement per kind for all its pools):
	// each pool's share is its own index probe, the big pool's included.
	roundOverBoth := func(name string, do func(pool string, i int)) pgx.TraceQueryStartData {
		t.Helper()
		for attempt := 0; attempt < 50; attempt++ {
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					do([]string{"small", "big"}[i%2], i)
				}()
			}
			wg.Wait()
			if d, ok := capture.captured(name); ok && poolsIn(d) >= 2 {
				return d
			}
		}
		t.Fatalf("no %s round over both pools in 50 attempts", name)
		return pgx.TraceQueryStartData{}
	}
	// Each client assigns and at once unblocks, so the small pool never
	// runs dry.
	cycle := func(pool string, _ int) {
		l, err := svc.Assign(ctx, tokens.AssignRequest{Pool: pool})
		if err == nil {
			err = svc.Unblock(ctx, pool, l.Token, &l.LeaseID)
		}
		if err != nil {
			t.Error(err)
		}
	}
	claim := roundOverBoth("ClaimBatch", cycle)
	release := roundOverBoth("ReleaseBatch", cycle)
	for _, c := range []struct {
		name string
		d    pgx.TraceQueryStartData
	}{{"ClaimBatch", claim}, {"ReleaseBatch", release}} {
		// Each request's own writes (the row, its index entries, its audit
		// row) cost a few dozen buffers, as one claim's do; reading the big
		// pool would cost thousands.
		requests := len(requestPools(c.d))
		roundBound := int64(perRequestBound * requests)
		for _, generic := range []bool{false, true} {
			if n := buffersOfPlan(t, pool, c.d, generic); n > roundBound {
				t.Errorf("%s of %d requests over both pools (generic plan %v) touched %d buffers (bound %d) beside %d tokens in the big pool", c.name, requests, generic, n, roundBound, bigSize)
			} else {
				t.Logf("%s of %d requests over both pools (generic plan %v): %d buffers", c.name, requests, generic, n)
			}
		}
	}
}

// requestPools returns the pool of each request of a captured batched
// statement (its pool_ids argument).
func requestPools(d pgx.TraceQueryStartData) []int32 {
	for _, a := range d.Args {
		if ids, ok := a.([]int32); ok {
			return ids
		}
	}
	return nil
}

// poolsIn counts the distinct pools of a captured batched statement.
func poolsIn(d pgx.TraceQueryStartData) int {
	seen := map[int32]bool{}
	for _, id := range requestPools(d) {
		seen[id] = true
	}
	return len(seen)
}
