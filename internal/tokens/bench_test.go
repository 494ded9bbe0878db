package tokens_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenlease/tokenlease/internal/tokens"
)

// Benchmarks of the store layer against a real PostgreSQL, one fresh database
// per top-level benchmark. benchstat-friendly:
//
//	go test -run '^$' -bench . -count 6 ./internal/tokens/ | tee new.txt
//	benchstat old.txt new.txt
//
// Figures are per operation (one statement per op unless the name says
// otherwise); sweep ops handle a whole batch of 1000 rows.

func benchSettings() tokens.Settings {
	return tokens.Settings{
		LeaseTTL: time.Minute, MaxLeaseTTL: time.Hour, KeepaliveTTL: 24 * time.Hour,
		MaxTokens: 100_000_000, Pod: "bench",
	}
}

// fill inserts n live, free tokens straight into the table (as make bench
// does for large pools) and keeps the counters in step.
func fill(b *testing.B, pool *pgxpool.Pool, n int) {
	b.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `
INSERT INTO tokens (pool_id, value, alive_until)
SELECT 1, translate(encode(uuid_send(gen_random_uuid()), 'base64'), '+/=', '-_'), now() + interval '1 day'
FROM generate_series(1, $1::int)`, n); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "UPDATE token_counters SET total = total + $1 WHERE pool_id = 1 AND slot = 0", n); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE tokens"); err != nil {
		b.Fatal(err)
	}
}

func newBenchService(b *testing.B, poolSize int, settings tokens.Settings) (*tokens.Service, *pgxpool.Pool) {
	b.Helper()
	bundle := tokens.Setup(b, func(s *tokens.Settings) { *s = settings })
	fill(b, bundle.Conns, poolSize)
	return bundle.Svc, bundle.Conns
}

// BenchmarkStore measures single operations one at a time (no concurrency,
// so no batching either): the latency floor of each statement.
func BenchmarkStore(b *testing.B) {
	ctx := context.Background()
	svc, pool := newBenchService(b, 10000, benchSettings())

	b.Run("claim", func(b *testing.B) {
		leases := make([]tokens.Lease, 0, b.N)
		for b.Loop() {
			l, err := svc.Assign(ctx, tokens.AssignRequest{})
			if err != nil {
				b.Fatal(err)
			}
			leases = append(leases, l)
			if len(leases) == 5000 { // keep the pool from running dry
				b.StopTimer()
				releaseAll(b, svc, leases)
				leases = leases[:0]
				b.StartTimer()
			}
		}
		b.StopTimer()
		releaseAll(b, svc, leases)
	})

	b.Run("release", func(b *testing.B) {
		var leases []tokens.Lease
		i := 0
		for b.Loop() {
			if i == len(leases) {
				b.StopTimer()
				leases = claimN(b, svc, 2000)
				i = 0
				b.StartTimer()
			}
			l := leases[i]
			i++
			if err := svc.Unblock(ctx, "", l.Token, &l.LeaseID); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		releaseAll(b, svc, leases[i:])
	})

	b.Run("cycle", func(b *testing.B) {
		for b.Loop() {
			l, err := svc.Assign(ctx, tokens.AssignRequest{})
			if err != nil {
				b.Fatal(err)
			}
			if err := svc.Unblock(ctx, "", l.Token, &l.LeaseID); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("keep-alive", func(b *testing.B) {
		leases := claimN(b, svc, 1000)
		i := 0
		for b.Loop() {
			l := leases[i%len(leases)]
			i++
			if _, err := svc.KeepAlive(ctx, "", l.Token, &l.LeaseID); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		releaseAll(b, svc, leases)
	})

	const batch = 1000
	b.Run(fmt.Sprintf("sweep-lapsed-%d", batch), func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			lapse(b, pool, batch)
			b.StartTimer()
			swept, err := svc.SweepLapsedLeases(ctx, batch)
			if err != nil || swept.Most != batch {
				b.Fatalf("swept %+v, %v", swept, err)
			}
		}
	})

	b.Run(fmt.Sprintf("sweep-dead-%d", batch), func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			fill(b, pool, batch)
			if _, err := pool.Exec(ctx, `UPDATE tokens SET alive_until = now() - interval '1 second'
				WHERE id IN (SELECT id FROM tokens WHERE lease_id IS NULL ORDER BY id DESC LIMIT $1)`, batch); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			swept, err := svc.SweepDeadTokens(ctx, batch)
			if err != nil || swept.Most != batch {
				b.Fatalf("swept %+v, %v", swept, err)
			}
		}
	})
}

// BenchmarkCycleParallel runs assign -> unblock cycles from 16 goroutines per
// core, as the HTTP layer would under load, with the per-pod batcher on and
// off. ns/op is wall time per cycle over all goroutines.
func BenchmarkCycleParallel(b *testing.B) {
	for _, batching := range []bool{false, true} {
		b.Run(fmt.Sprintf("batching=%v", batching), func(b *testing.B) {
			settings := benchSettings()
			settings.Batching = batching
			svc, _ := newBenchService(b, 10000, settings)
			ctx := context.Background()
			var failed atomic.Value
			b.SetParallelism(8) // 16 goroutines on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					l, err := svc.Assign(ctx, tokens.AssignRequest{})
					if err == nil {
						err = svc.Unblock(ctx, "", l.Token, &l.LeaseID)
					}
					if err != nil {
						failed.Store(err)
					}
				}
			})
			if err := failed.Load(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

func claimN(b *testing.B, svc *tokens.Service, n int) []tokens.Lease {
	b.Helper()
	out := make([]tokens.Lease, n)
	for i := range out {
		l, err := svc.Assign(context.Background(), tokens.AssignRequest{})
		if err != nil {
			b.Fatal(err)
		}
		out[i] = l
	}
	return out
}

func releaseAll(b *testing.B, svc *tokens.Service, leases []tokens.Lease) {
	b.Helper()
	for _, l := range leases {
		if err := svc.Unblock(context.Background(), "", l.Token, &l.LeaseID); err != nil {
			b.Fatal(err)
		}
	}
}

// lapse gives n free tokens a lease that has already lapsed.
func lapse(b *testing.B, pool *pgxpool.Pool, n int) {
	b.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `
WITH picked AS (SELECT id FROM tokens WHERE lease_id IS NULL AND alive_until > now() LIMIT $1)
UPDATE tokens t SET lease_id = nextval('lease_id_seq'), lease_ttl = interval '1 second',
       lease_expires_at = now() - interval '1 second'
FROM picked WHERE t.id = picked.id`, n); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "UPDATE token_counters SET assigned = assigned + $1 WHERE pool_id = 1 AND slot = 0", n); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCyclePools is issue 10's spread on the service alone (no HTTP):
// 16 goroutines cycling assign -> unblock, spread over 8 pools of 10k or on
// one pool of 80k, one statement per kind for all a round's pools (across)
// or one per pool (per-pool, BATCH_ACROSS_POOLS=off). ns/op is one cycle.
func BenchmarkCyclePools(b *testing.B) {
	for _, bc := range []struct {
		name    string
		pools   int
		perPool bool
	}{
		{"pools=1", 1, false},
		{"pools=8/across", 8, false},
		{"pools=8/per-pool", 8, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			settings := benchSettings()
			settings.Batching, settings.BatchWindow, settings.BatchPerPool = true, 5*time.Millisecond, bc.perPool
			bundle := tokens.Setup(b, func(s *tokens.Settings) { *s = settings })
			svc, ctx := bundle.Svc, context.Background()
			names := make([]string, bc.pools)
			for i := range names {
				names[i] = fmt.Sprintf("p%d", i)
				if _, _, err := svc.PutPool(ctx, names[i], tokens.PoolSettings{}); err != nil {
					b.Fatal(err)
				}
				for left := 80_000 / bc.pools; left > 0; left -= 10_000 {
					if _, err := svc.Generate(ctx, names[i], min(left, 10_000)); err != nil {
						b.Fatal(err)
					}
				}
			}
			if _, err := bundle.Conns.Exec(ctx, "VACUUM ANALYZE tokens"); err != nil {
				b.Fatal(err)
			}
			var failed atomic.Value
			var next atomic.Int64
			b.SetParallelism(8) // 16 goroutines on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				pool := names[int(next.Add(1))%len(names)]
				for pb.Next() {
					l, err := svc.Assign(ctx, tokens.AssignRequest{Pool: pool})
					if err == nil {
						err = svc.Unblock(ctx, pool, l.Token, &l.LeaseID)
					}
					if err != nil {
						failed.Store(err)
					}
				}
			})
			if err := failed.Load(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
