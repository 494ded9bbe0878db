package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Pools (`make bench-pools`, `tokenbench suite -pools-scenario`): what spreading load
// over named pools costs, and whether a big pool slows a small one down.
//
//   - spread: 16 clients over 8 pools of 10k tokens each against 16 clients
//     on one pool of 80k (the same total), in one database and one pod, in
//     alternating rounds; target: cycles/s ratio >= 0.9.
//   - neighbour: 16 clients claiming in a 1k-token pool beside a pool of
//     1,000,000 tokens, against the same load on a lone 1k pool (a database
//     of its own), in alternating rounds; target: ratio >= 0.9.

type poolsBench struct {
	s      *suite
	rounds int
	// compare is another tokend build whose spread ratio is measured in
	// the same rounds (a before/after of a change).
	compare string
}

type poolsRatio struct {
	name, a, b string
	aCPS, bCPS []float64
}

func (r poolsRatio) ratio() float64 { return median(r.aCPS) / max(median(r.bCPS), 1) }

func cmdPools(c suiteConfig) error {
	s := &suite{cfg: c, ctx: context.Background(), started: time.Now()}
	if err := os.MkdirAll(c.LogDir, 0o755); err != nil {
		return err
	}
	if err := s.findPostmaster(); err != nil {
		return err
	}
	b := &poolsBench{s: s, rounds: max(c.Rounds, 1), compare: c.PoolsCompare}
	spread, err := b.spread()
	if err != nil {
		return err
	}
	neighbour, err := b.neighbour()
	if err != nil {
		return err
	}
	logf("\n| scenario | measured | cycles/s | against | cycles/s | ratio | target |\n|---|---|---|---|---|---|---|")
	for _, r := range append(spread, neighbour) {
		logf("| %s | %s | %.0f | %s | %.0f | %.2f | >= 0.9 (%s) |", r.name, r.a, median(r.aCPS), r.b, median(r.bCPS), r.ratio(), yesNo(r.ratio() >= 0.9))
	}
	return nil
}

// database creates a fresh bench database, migrated, with one pod of the
// suite's tokend on it.
func (b *poolsBench) database(name string) (string, *process, error) {
	dbURL, err := b.createDatabase(name)
	if err != nil {
		return "", nil, err
	}
	p, err := b.startPod(dbURL, name, b.s.cfg.Tokend, nil)
	return dbURL, p, err
}

// createDatabase drops and creates the bench database name and migrates it.
func (b *poolsBench) createDatabase(name string) (string, error) {
	s := b.s
	admin, err := pgx.Connect(s.ctx, s.cfg.AdminURL)
	if err != nil {
		return "", err
	}
	defer admin.Close(s.ctx)
	if _, err := admin.Exec(s.ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := admin.Exec(s.ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", err
	}
	dbURL := s.dbURL(name)
	migrate := exec.Command(s.cfg.Tokend, "migrate")
	migrate.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "LOG_LEVEL=warn")
	if out, err := migrate.CombinedOutput(); err != nil {
		return "", fmt.Errorf("tokend migrate: %v\n%s", err, out)
	}
	return dbURL, nil
}

// startPod starts the tokend binary on dbURL with the suite's pod
// environment plus env, and waits until it is ready.
func (b *poolsBench) startPod(dbURL, name, binary string, env []string) (*process, error) {
	s := b.s
	s.nextPort++
	addr := fmt.Sprintf("127.0.0.1:%d", s.cfg.PortBase+s.nextPort)
	env = append(append([]string{"DATABASE_URL=" + dbURL, "HTTP_ADDR=" + addr, "KEEPALIVE_TTL=24h", "LOG_LEVEL=warn", "POD_NAME=bench-" + name}, s.cfg.PodEnv...), env...)
	p, err := startProcess(name, []string{binary}, env, s.cfg.LogDir)
	if err != nil {
		return nil, err
	}
	p.url = "http://" + addr
	if err := waitReady(p.url+"/readyz", 30*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s: %w (log: %s)", name, err, p.logPath)
	}
	return p, nil
}

// fillPool creates pool and puts n live, free tokens into it with one SQL
// statement (keeping its counters in step).
func (b *poolsBench) fillPool(dbURL, podURL, pool string, n int) error {
	req, _ := http.NewRequest("PUT", podURL+"/pools/"+pool, strings.NewReader(`{"keepalive_ttl":"24h"}`))
	req.Header.Set("Authorization", benchAuthorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := readAllClose(resp)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT /pools/%s: HTTP %d %s", pool, resp.StatusCode, truncate(body, 200))
	}
	conn, err := pgx.Connect(b.s.ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(b.s.ctx)
	_, err = conn.Exec(b.s.ctx, `
WITH p AS (SELECT id FROM pools WHERE name = $1 AND deleted_at IS NULL),
ins AS (
    INSERT INTO tokens (pool_id, value, alive_until)
    SELECT p.id, translate(encode(uuid_send(gen_random_uuid()), 'base64'), '+/=', '-_'), now() + interval '1 day'
    FROM p, generate_series(1, $2::int)
    RETURNING pool_id)
UPDATE token_counters SET total = total + (SELECT count(*) FROM ins)
WHERE pool_id = (SELECT id FROM p) AND slot = 0`, pool, n)
	return err
}

func (b *poolsBench) vacuum(dbURL string) error {
	conn, err := pgx.Connect(b.s.ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(b.s.ctx)
	_, err = conn.Exec(b.s.ctx, "VACUUM ANALYZE tokens")
	return err
}

func prefixes(pools ...string) []string {
	out := make([]string, len(pools))
	for i, p := range pools {
		out[i] = "/pools/" + p + "/tokens"
	}
	return out
}

// measure runs 16 clients against url over the pools' prefixes.
func (b *poolsBench) measure(url string, pfx []string) (float64, error) {
	res, err := runLoad(loadConfig{Targets: []string{url}, Prefixes: pfx, Clients: 16, Duration: b.s.cfg.Duration, Warmup: b.s.cfg.Warmup})
	if err != nil {
		return 0, err
	}
	if res.DoubleAssignments > 0 || res.Errors > 0 {
		return 0, fmt.Errorf("%d double assignments, %d errors: %v", res.DoubleAssignments, res.Errors, res.ErrorSamples)
	}
	return res.CyclesPerSec, nil
}

// spread measures 16 clients over 8 pools against 16 on one pool; with a
// build to compare (-pools-compare), that build's pod runs on the same
// database and every round measures both builds, in rotating order.
func (b *poolsBench) spread() ([]poolsRatio, error) {
	builds := []struct{ label, binary string }{{"", b.s.cfg.Tokend}}
	if b.compare != "" {
		builds[0].label = " (this build)"
		builds = append(builds, struct{ label, binary string }{" (" + b.compare + ")", b.compare})
	}
	rs := make([]poolsRatio, len(builds))
	for i, bd := range builds {
		rs[i] = poolsRatio{name: "spread" + bd.label, a: "16 clients over 8 pools of 10k", b: "16 clients on 1 pool of 80k"}
	}
	logf("== pools: spread (8 x 10k vs 1 x 80k)")
	dbURL, err := b.createDatabase("tokenlease_bench_pools_spread")
	if err != nil {
		return nil, err
	}
	pods := make([]*process, len(builds))
	for i, bd := range builds {
		p, err := b.startPod(dbURL, fmt.Sprintf("tokenlease_bench_pools_spread-%d", i), bd.binary, nil)
		if err != nil {
			return nil, err
		}
		defer p.stop()
		pods[i] = p
	}
	many := []string{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"}
	for _, p := range many {
		if err := b.fillPool(dbURL, pods[0].url, p, 10000); err != nil {
			return nil, err
		}
	}
	if err := b.fillPool(dbURL, pods[0].url, "one", 80000); err != nil {
		return nil, err
	}
	if err := b.vacuum(dbURL); err != nil {
		return nil, err
	}
	type run struct {
		build  int
		spread bool
	}
	var order []run
	for i := range builds {
		order = append(order, run{i, true}, run{i, false})
	}
	for round := 0; round < b.rounds; round++ {
		for k := range order {
			rn := order[(k+round)%len(order)]
			pfx := prefixes("one")
			if rn.spread {
				pfx = prefixes(many...)
			}
			cps, err := b.measure(pods[rn.build].url, pfx)
			if err != nil {
				return nil, err
			}
			r := &rs[rn.build]
			what := r.b
			if rn.spread {
				r.aCPS, what = append(r.aCPS, cps), r.a
			} else {
				r.bCPS = append(r.bCPS, cps)
			}
			logf("   r%d %-32s%s %7.0f cycles/s", round+1, what, builds[rn.build].label, cps)
		}
	}
	return rs, nil
}

func (b *poolsBench) neighbour() (poolsRatio, error) {
	r := poolsRatio{name: "neighbour", a: "1k pool beside a 1M pool", b: "a lone 1k pool"}
	logf("== pools: neighbour (1k beside 1M vs a lone 1k)")
	bigURL, bigPod, err := b.database("tokenlease_bench_pools_big")
	if err != nil {
		return r, err
	}
	defer bigPod.stop()
	loneURL, lonePod, err := b.database("tokenlease_bench_pools_lone")
	if err != nil {
		return r, err
	}
	defer lonePod.stop()
	t0 := time.Now()
	if err := b.fillPool(bigURL, bigPod.url, "big", 1000000); err != nil {
		return r, err
	}
	logf("   loaded 1M tokens in %.1fs", time.Since(t0).Seconds())
	for _, db := range []struct{ url, pod string }{{bigURL, bigPod.url}, {loneURL, lonePod.url}} {
		if err := b.fillPool(db.url, db.pod, "small", 1000); err != nil {
			return r, err
		}
		if err := b.vacuum(db.url); err != nil {
			return r, err
		}
	}
	for round := 0; round < b.rounds; round++ {
		for _, beside := range []bool{round%2 == 0, round%2 != 0} {
			url := lonePod.url
			if beside {
				url = bigPod.url
			}
			cps, err := b.measure(url, prefixes("small"))
			if err != nil {
				return r, err
			}
			if beside {
				r.aCPS = append(r.aCPS, cps)
			} else {
				r.bCPS = append(r.bCPS, cps)
			}
			logf("   r%d %-32s %7.0f cycles/s", round+1, map[bool]string{true: r.a, false: r.b}[beside], cps)
		}
	}
	return r, nil
}
