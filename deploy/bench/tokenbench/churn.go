package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Churn (`make bench-churn`, `tokenbench suite -churn`): steady assign ->
// unblock load, with a keep-alive every few cycles, against one pod on a
// fresh pool for minutes on end. It reports the claim rate at the end against
// the start, and what the churn leaves behind: the size of tokens and of each
// of its indexes, of the audit log, dead tuples, and autovacuum runs. Then
// shorter runs, one per table-settings variant on a fresh database each
// (the shipped settings against PostgreSQL's defaults, and any candidates),
// show what the settings buy.

const (
	churnBegin = "<!-- bench-churn:begin (written by make bench-churn; edits inside are overwritten) -->"
	churnEnd   = "<!-- bench-churn:end -->"
)

// churnVariant is a set of storage options for tokens, applied right after
// the migrations and before the pool is loaded (fillfactor only governs
// pages filled after it is set).
type churnVariant struct {
	Name string
	// SQL run on the fresh database before the load; empty: as migrated.
	SQL string
}

// tokensOptions are the per-table options migration 00001 sets on tokens.
const tokensOptions = "fillfactor, autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor, autovacuum_vacuum_cost_delay, autovacuum_vacuum_threshold, autovacuum_vacuum_cost_limit"

// parseChurnVariant reads "shipped", "defaults" (every option of tokens reset
// to PostgreSQL's default), or "NAME:opt=v;opt=v" (the shipped settings plus
// these options).
func parseChurnVariant(v string) (churnVariant, error) {
	switch v {
	case "shipped":
		return churnVariant{Name: v}, nil
	case "defaults":
		return churnVariant{Name: v, SQL: "ALTER TABLE tokens RESET (" + tokensOptions + ")"}, nil
	}
	name, opts, ok := strings.Cut(v, ":")
	if !ok || name == "" || opts == "" {
		return churnVariant{}, fmt.Errorf("churn variant %q: want shipped, defaults or NAME:opt=v;opt=v", v)
	}
	for _, o := range strings.Split(opts, ";") {
		k, val, ok := strings.Cut(o, "=")
		if !ok || strings.Trim(k, "abcdefghijklmnopqrstuvwxyz_") != "" || strings.Trim(val, "0123456789.") != "" {
			return churnVariant{}, fmt.Errorf("churn variant %q: bad option %q", v, o)
		}
	}
	return churnVariant{Name: name, SQL: "ALTER TABLE tokens SET (" + strings.ReplaceAll(opts, ";", ", ") + ")"}, nil
}

// relSizes is a snapshot of the tables' sizes and maintenance counters.
type relSizes struct {
	At            float64          `json:"at_s"` // seconds since the load began
	Claims        int64            `json:"claims"`
	TokensTotal   int64            `json:"tokens_total_bytes"` // heap + indexes + toast
	TokensHeap    int64            `json:"tokens_heap_bytes"`
	Indexes       map[string]int64 `json:"index_bytes"`
	EventsTotal   int64            `json:"token_events_bytes"`
	LiveTup       int64            `json:"n_live_tup"`
	DeadTup       int64            `json:"n_dead_tup"`
	Autovacuums   int64            `json:"autovacuum_count"`
	Autoanalyzes  int64            `json:"autoanalyze_count"`
	HotUpdates    int64            `json:"n_tup_hot_upd"`
	Updates       int64            `json:"n_tup_upd"`
	Checkpoints   int64            `json:"checkpoints"`
	TokensOptions string           `json:"reloptions"`
}

func snapshotSizes(s *suite, conn *pgx.Conn, t0 time.Time) (relSizes, error) {
	r := relSizes{At: time.Since(t0).Seconds(), Indexes: map[string]int64{}}
	err := conn.QueryRow(s.ctx, `
SELECT (SELECT last_value FROM lease_id_seq),
       pg_total_relation_size('tokens'), pg_relation_size('tokens'),
       (SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint FROM pg_partition_tree('token_log')),
       st.n_live_tup, st.n_dead_tup, st.autovacuum_count, st.autoanalyze_count, st.n_tup_hot_upd, st.n_tup_upd,
       (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter),
       coalesce((SELECT array_to_string(reloptions, ', ') FROM pg_class WHERE oid = 'tokens'::regclass), '')
FROM pg_stat_user_tables st WHERE st.relid = 'tokens'::regclass`).Scan(
		&r.Claims, &r.TokensTotal, &r.TokensHeap, &r.EventsTotal, &r.LiveTup, &r.DeadTup,
		&r.Autovacuums, &r.Autoanalyzes, &r.HotUpdates, &r.Updates, &r.Checkpoints, &r.TokensOptions)
	if err != nil {
		return r, err
	}
	rows, err := conn.Query(s.ctx, `
SELECT i.indexrelid::regclass::text, pg_relation_size(i.indexrelid)
FROM pg_index i WHERE i.indrelid = 'tokens'::regclass`)
	if err != nil {
		return r, err
	}
	for rows.Next() {
		var name string
		var size int64
		if err := rows.Scan(&name, &size); err != nil {
			return r, err
		}
		r.Indexes[name] = size
	}
	return r, rows.Err()
}

// churnResult is one churn run on one database.
type churnResult struct {
	Variant      string     `json:"variant"`
	Pool         int        `json:"pool"`
	Clients      int        `json:"clients"`
	Seconds      float64    `json:"seconds"`
	CyclesPerSec float64    `json:"cycles_per_s"`
	FirstCPS     float64    `json:"first_cps"` // the first 30 s after warm-up
	LastCPS      float64    `json:"last_cps"`  // the last 30 s
	PGCPUUs      float64    `json:"pg_cpu_us_per_cycle"`
	AssignP99    float64    `json:"assign_p99_ms"`
	KeepAlives   int64      `json:"keep_alives"`
	Errors       int64      `json:"errors"`
	Doubles      int64      `json:"double_assignments"`
	MaxDeadTup   int64      `json:"max_n_dead_tup"`
	Samples      []relSizes `json:"samples"`
}

type churnConfig struct {
	Pool      int
	Clients   int
	Duration  time.Duration // the long run
	ABWindow  time.Duration // each variant's run
	Variants  []churnVariant
	KeepAlive int // every n-th cycle renews its lease
	Sample    time.Duration
}

func cmdChurn(c suiteConfig, cc churnConfig) error {
	s := &suite{cfg: c, ctx: context.Background(), started: time.Now()}
	if err := os.MkdirAll(c.LogDir, 0o755); err != nil {
		return err
	}
	out, err := os.Create(filepath.Join(c.LogDir, "churn.jsonl"))
	if err != nil {
		return err
	}
	defer out.Close()
	if err := s.findPostmaster(); err != nil {
		return err
	}
	admin, err := pgx.Connect(s.ctx, c.AdminURL)
	if err != nil {
		return err
	}
	var dbs []string
	dbs = append(dbs, "tokenlease_bench_churn")
	for _, v := range cc.Variants {
		dbs = append(dbs, "tokenlease_bench_churn_"+strings.ToLower(v.Name))
	}
	for _, db := range dbs {
		if _, err := admin.Exec(s.ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
			admin.Close(s.ctx)
			return err
		}
	}
	var naptime string
	_ = admin.QueryRow(s.ctx, "SELECT current_setting('autovacuum_naptime')").Scan(&naptime)
	admin.Close(s.ctx)
	s.checkpoints0, _ = s.checkpoints()

	var results []churnResult
	if cc.Duration > 0 {
		logf("== churn: %s pool, %d clients, %s, shipped settings", poolLabel(cc.Pool), cc.Clients, cc.Duration)
		r, err := s.churnRun(dbs[0], churnVariant{Name: "shipped"}, cc, cc.Duration)
		if err != nil {
			return err
		}
		r.Variant = "long run (shipped)"
		results = append(results, r)
		line, _ := json.Marshal(r)
		fmt.Fprintln(out, string(line))
	}
	for i, v := range cc.Variants {
		if cc.ABWindow <= 0 {
			break
		}
		logf("== churn A/B: %s pool, %d clients, %s, settings %q", poolLabel(cc.Pool), cc.Clients, cc.ABWindow, v.Name)
		r, err := s.churnRun(dbs[i+1], v, cc, cc.ABWindow)
		if err != nil {
			return err
		}
		results = append(results, r)
		line, _ := json.Marshal(r)
		fmt.Fprintln(out, string(line))
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "Run of %s, %.0f s in all. %d clients on one pod (batching on), assign -> unblock cycles back to back, 1 cycle in %d renews its lease (keep-alive) before the unblock; %s pool, fresh database per run; autovacuum_naptime %s (cluster). Sizes at the start are right after the load and `VACUUM ANALYZE`.  \n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), time.Since(s.started).Seconds(), cc.Clients, cc.KeepAlive, poolLabel(cc.Pool), naptime)
	fmt.Fprintf(&b, "Machine: %s.  \n%s.  \n", machine(), s.pgInfo)
	if n, err := s.checkpoints(); err == nil {
		fmt.Fprintf(&b, "Checkpoints during the runs: %d.\n", n-s.checkpoints0)
	}
	b.WriteString("\n| run | tokens options | length | cycles/s | first 30 s | last 30 s | last / first | PG µs/cycle | assign p99 ms | tokens total start -> end | heap start -> end | token_events start -> end | dead tuples at end (max seen) | autovacuums (autoanalyzes) | HOT updates | errors | double assignments |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		a, z := r.Samples[0], r.Samples[len(r.Samples)-1]
		opts := a.TokensOptions
		if opts == "" {
			opts = "(PostgreSQL defaults)"
		}
		hot := 0.0
		if z.Updates > a.Updates {
			hot = float64(z.HotUpdates-a.HotUpdates) / float64(z.Updates-a.Updates) * 100
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f s | %.0f | %.0f | %.0f | %.2f | %.0f | %.2f | %s -> %s | %s -> %s | %s -> %s | %d (%d) | %d (%d) | %.0f %% | %d | %d |\n",
			r.Variant, opts, r.Seconds, r.CyclesPerSec, r.FirstCPS, r.LastCPS, r.LastCPS/max(r.FirstCPS, 1), r.PGCPUUs, r.AssignP99,
			mb(a.TokensTotal), mb(z.TokensTotal), mb(a.TokensHeap), mb(z.TokensHeap), mb(a.EventsTotal), mb(z.EventsTotal),
			z.DeadTup, r.MaxDeadTup, z.Autovacuums-a.Autovacuums, z.Autoanalyzes-a.Autoanalyzes, hot, r.Errors, r.Doubles)
	}
	b.WriteString("\nIndexes of tokens (pg_relation_size), start -> end:\n\n| run |")
	names := indexNames(results)
	for _, n := range names {
		fmt.Fprintf(&b, " %s |", n)
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(names)) + "\n")
	for _, r := range results {
		a, z := r.Samples[0], r.Samples[len(r.Samples)-1]
		fmt.Fprintf(&b, "| %s |", r.Variant)
		for _, n := range names {
			fmt.Fprintf(&b, " %s -> %s |", mb(a.Indexes[n]), mb(z.Indexes[n]))
		}
		b.WriteString("\n")
	}
	if len(results) > 0 && len(results[0].Samples) > 2 {
		r := results[0]
		fmt.Fprintf(&b, "\nThe %s over time (cycles/s over the preceding sample interval):\n\n", r.Variant)
		b.WriteString("| at | cycles/s | tokens total | heap | token_events | live / dead tuples | autovacuums so far |\n|---|---|---|---|---|---|---|\n")
		a := r.Samples[0]
		for i, p := range r.Samples {
			rate := "–"
			if i > 0 {
				q := r.Samples[i-1]
				rate = fmt.Sprintf("%.0f", float64(p.Claims-q.Claims)/max(p.At-q.At, 0.001))
			}
			fmt.Fprintf(&b, "| %.0f s | %s | %s | %s | %s | %d / %d | %d |\n", p.At, rate, mb(p.TokensTotal), mb(p.TokensHeap), mb(p.EventsTotal),
				p.LiveTup, p.DeadTup, p.Autovacuums-a.Autovacuums)
		}
	}
	if c.Note != "" {
		fmt.Fprintf(&b, "\n%s\n", c.Note)
	}
	table := b.String()
	fmt.Println()
	fmt.Println(table)
	if c.Out == "" {
		return nil
	}
	return writeSection(c.Out, churnBegin, churnEnd, "## Latest `make bench-churn` run", table)
}

func indexNames(results []churnResult) []string {
	var names []string
	seen := map[string]bool{}
	for _, r := range results {
		for _, p := range r.Samples {
			for n := range p.Indexes {
				if !seen[n] {
					seen[n] = true
					names = append(names, n)
				}
			}
		}
	}
	slices.Sort(names)
	return names
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

// churnRun creates db with the variant's settings, starts one pod, loads
// the pool and churns it for d, sampling sizes and the claim count.
func (s *suite) churnRun(db string, v churnVariant, cc churnConfig, d time.Duration) (churnResult, error) {
	res := churnResult{Variant: v.Name, Pool: cc.Pool, Clients: cc.Clients}
	admin, err := pgx.Connect(s.ctx, s.cfg.AdminURL)
	if err != nil {
		return res, err
	}
	_, err = admin.Exec(s.ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize())
	admin.Close(s.ctx)
	if err != nil {
		return res, err
	}
	dbURL := s.dbURL(db)
	migrate := exec.Command(s.cfg.Tokend, "migrate")
	migrate.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "LOG_LEVEL=warn")
	if out, err := migrate.CombinedOutput(); err != nil {
		return res, fmt.Errorf("tokend migrate: %v\n%s", err, out)
	}
	conn, err := pgx.Connect(s.ctx, dbURL)
	if err != nil {
		return res, err
	}
	defer conn.Close(s.ctx)
	if v.SQL != "" {
		if _, err := conn.Exec(s.ctx, v.SQL); err != nil {
			return res, fmt.Errorf("%s: %w", v.SQL, err)
		}
	}
	s.nextPort++
	addr := fmt.Sprintf("127.0.0.1:%d", s.cfg.PortBase+s.nextPort)
	env := append([]string{
		"DATABASE_URL=" + dbURL, "HTTP_ADDR=" + addr, "KEEPALIVE_TTL=24h", "LOG_LEVEL=warn",
		"POD_NAME=bench-churn", "BATCHING=on",
	}, s.cfg.PodEnv...)
	pod, err := startProcess("tokend-churn-"+strings.ToLower(v.Name), []string{s.cfg.Tokend}, env, s.cfg.LogDir)
	if err != nil {
		return res, err
	}
	defer pod.stop()
	pod.url = "http://" + addr
	if err := waitReady(pod.url+"/readyz", 30*time.Second); err != nil {
		return res, fmt.Errorf("%s: %w (log: %s)", pod.name, err, pod.logPath)
	}
	if err := s.load(dbURL, pod.url, cc.Pool); err != nil {
		return res, err
	}

	t0 := time.Now()
	first, err := snapshotSizes(s, conn, t0)
	if err != nil {
		return res, err
	}
	res.Samples = append(res.Samples, first)
	const warm = 2 * time.Second
	const edge = 30 * time.Second
	meter := &cpuMeter{probes: []cpuProbe{{Name: "postgres", Pid: s.postmaster, Postgres: true}}}
	var (
		wg      sync.WaitGroup
		load    loadResult
		loadErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		load, loadErr = runLoad(loadConfig{Targets: []string{pod.url}, Clients: cc.Clients, Warmup: warm, Duration: d,
			KeepAliveEvery: cc.KeepAlive, Window: meter.window})
	}()
	// Claim counts at the edges of the first and last 30 s, and the sizes
	// every sample interval.
	claimsAt := func() (int64, time.Time, error) {
		var n int64
		err := conn.QueryRow(s.ctx, "SELECT last_value FROM lease_id_seq").Scan(&n)
		return n, time.Now(), err
	}
	time.Sleep(warm)
	c0, ta, err := claimsAt()
	if err != nil {
		return res, err
	}
	end := ta.Add(d)
	var c1, c2 int64
	var tb, tc time.Time
	gotFirst, gotLastStart := false, false
	next := ta.Add(cc.Sample)
	for {
		now := time.Now()
		wake := next
		if !gotFirst && ta.Add(edge).Before(wake) {
			wake = ta.Add(edge)
		}
		if !gotLastStart && end.Add(-edge).Before(wake) {
			wake = end.Add(-edge)
		}
		if end.Before(wake) {
			wake = end
		}
		time.Sleep(wake.Sub(now))
		if !gotFirst && !time.Now().Before(ta.Add(edge)) {
			if c1, tb, err = claimsAt(); err != nil {
				return res, err
			}
			res.FirstCPS = float64(c1-c0) / tb.Sub(ta).Seconds()
			gotFirst = true
		}
		if !gotLastStart && !time.Now().Before(end.Add(-edge)) {
			if c2, tc, err = claimsAt(); err != nil {
				return res, err
			}
			gotLastStart = true
		}
		if !time.Now().Before(end) {
			break
		}
		if !time.Now().Before(next) {
			p, err := snapshotSizes(s, conn, t0)
			if err != nil {
				return res, err
			}
			res.MaxDeadTup = max(res.MaxDeadTup, p.DeadTup)
			res.Samples = append(res.Samples, p)
			logf("   %4.0fs %s total, heap %s, events %s, live/dead %d/%d, autovacuums %d",
				p.At, mb(p.TokensTotal), mb(p.TokensHeap), mb(p.EventsTotal), p.LiveTup, p.DeadTup, p.Autovacuums-first.Autovacuums)
			next = next.Add(cc.Sample)
		}
	}
	c3, td, err := claimsAt()
	if err != nil {
		return res, err
	}
	res.LastCPS = float64(c3-c2) / td.Sub(tc).Seconds()
	wg.Wait()
	if loadErr != nil {
		return res, loadErr
	}
	if meter.err != nil {
		return res, meter.err
	}
	// Sizes at the end, after the load stopped (the stats lag by up to a second).
	time.Sleep(time.Second)
	last, err := snapshotSizes(s, conn, t0)
	if err != nil {
		return res, err
	}
	res.MaxDeadTup = max(res.MaxDeadTup, last.DeadTup)
	res.Samples = append(res.Samples, last)
	res.Seconds = load.Seconds
	res.CyclesPerSec = load.CyclesPerSec
	res.AssignP99 = load.AssignP99Ms
	res.KeepAlives, res.Errors, res.Doubles = load.KeepAlives, load.Errors, load.DoubleAssignments
	if load.Cycles > 0 {
		res.PGCPUUs = meter.delta[0] * 1e6 / float64(load.Cycles)
	}
	for _, e := range load.ErrorSamples {
		logf("   ! %s", e)
	}
	logf("   %s: %.0f cycles/s (first 30 s %.0f, last 30 s %.0f), PG %.0f us/cycle, tokens %s -> %s, events %s -> %s, autovacuums %d, errors %d, double %d",
		v.Name, res.CyclesPerSec, res.FirstCPS, res.LastCPS, res.PGCPUUs, mb(first.TokensTotal), mb(last.TokensTotal),
		mb(first.EventsTotal), mb(last.EventsTotal), last.Autovacuums-first.Autovacuums, res.Errors, res.Doubles)
	return res, nil
}
