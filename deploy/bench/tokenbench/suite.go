package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// The suite is what `make bench` runs (deploy/bench/run.sh boots the cluster
// and builds the binaries): for each pool size it creates a database, starts
// pods, loads the pool, and measures side by side, in rounds whose order
// rotates, the reference pgbench scripts, the bare HTTP floor, and the service
// with batching on and off, with one and two pods. It prints the table and
// writes it into docs/BENCHMARKS.md between the generated-section markers.

type suiteConfig struct {
	AdminURL  string
	Tokend    string
	Pgbench   string
	ScriptDir string
	Out       string
	LogDir    string
	Pools     []int
	Clients   []int
	Rounds    int
	Duration  time.Duration
	Warmup    time.Duration
	PortBase  int
	Quick     bool
	PodEnv    []string // extra environment for every pod
	Note      string
	Scenarios bool
	// OnlyScenarios skips the rounds; ScenarioNames picks scenarios, each
	// run ScenarioRepeat times on the same pool.
	OnlyScenarios  bool
	ScenarioNames  []string
	ScenarioRepeat int
	// PoolsCompare is another tokend build for the pools scenario's spread
	// A/B (-pools-compare).
	PoolsCompare string
	// AuditTables are the audit relations whose bytes the audit variant
	// counts (with their partitions, indexes and TOAST).
	AuditTables []string
	// Variants, when set, limits every round to these variants.
	Variants []string
}

// Variants measured side by side.
const (
	vRef     = "ref"       // pgbench: claim + release statements, one token each
	vFloor   = "floor"     // bare net/http server with fixed JSON, flat out
	vFloorAt = "floor@svc" // the same, paced to the service's rate of the round
	vSvc     = "svc"       // 1 pod, batching on
	vNoBatch = "svc-off"   // 1 pod, batching off
	vTwoPods = "svc-2pod"  // 2 pods, batching on
	vFour    = "svc-4pod"  // 4 pods, batching on
	vLean    = "lean"      // pgbench: the lean ceiling (deploy/bench/lean), on its own database
	vAudit   = "svc-audit" // 1 pod, batching on, assign -> keep-alive -> unblock; audit bytes measured
)

var allVariants = []string{vLean, vRef, vFloor, vSvc, vNoBatch, vTwoPods, vFour, vAudit}

type measurement struct {
	Pool         int     `json:"pool"`
	Clients      int     `json:"clients"`
	Variant      string  `json:"variant"`
	Round        int     `json:"round"`
	CyclesPerSec float64 `json:"cycles_per_s"`
	Cycles       int64   `json:"cycles"`
	AssignP50    float64 `json:"assign_p50_ms"`
	AssignP99    float64 `json:"assign_p99_ms"`
	UnblockP50   float64 `json:"unblock_p50_ms"`
	UnblockP99   float64 `json:"unblock_p99_ms"`
	Errors       int64   `json:"errors"`
	Doubles      int64   `json:"double_assignments"`
	PGCPUUs      float64 `json:"pg_cpu_us_per_cycle"`
	ProcCPUUs    float64 `json:"proc_cpu_us_per_cycle"` // service pods or floor
	LoadgenCPUUs float64 `json:"loadgen_cpu_us_per_cycle"`
	KeepAlives   int64   `json:"keep_alives,omitempty"`
	// The audit variant: bytes written per cycle for the audit relations.
	Audit *auditBytes `json:"audit,omitempty"`
}

type intList []int

func (l *intList) String() string { return fmt.Sprint(*l) }
func (l *intList) Set(v string) error {
	*l = nil
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		switch {
		case strings.HasSuffix(f, "k"):
			mult, f = 1000, strings.TrimSuffix(f, "k")
		case strings.HasSuffix(f, "M"):
			mult, f = 1000000, strings.TrimSuffix(f, "M")
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return err
		}
		*l = append(*l, n*mult)
	}
	return nil
}

func cmdSuite(args []string) error {
	fs := flag.NewFlagSet("suite", flag.ExitOnError)
	var c suiteConfig
	fs.StringVar(&c.AdminURL, "admin-url", "postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable", "PostgreSQL server for the bench databases (a role that may CREATE DATABASE)")
	fs.StringVar(&c.Tokend, "tokend", "bin/tokend", "tokend binary")
	fs.StringVar(&c.Pgbench, "pgbench", "pgbench", "pgbench binary")
	fs.StringVar(&c.ScriptDir, "scripts", "deploy/bench", "directory of the pgbench scripts")
	fs.StringVar(&c.Out, "out", "docs/BENCHMARKS.md", "markdown file to write the table into (empty: print only)")
	fs.StringVar(&c.LogDir, "logs", ".data/bench", "directory for pod logs and raw results")
	fs.IntVar(&c.Rounds, "rounds", 3, "A/B rounds per configuration (medians are reported)")
	fs.DurationVar(&c.Duration, "duration", 4*time.Second, "measured window per run")
	fs.DurationVar(&c.Warmup, "warmup", time.Second, "warm-up before each window")
	fs.IntVar(&c.PortBase, "port-base", 18500, "first loopback port for pods and the floor")
	fs.BoolVar(&c.Quick, "quick", false, "the short run: 1 round, 10k and 1M pools, shorter windows")
	fs.StringVar(&c.Note, "note", "", "free text written under the table")
	fs.BoolVar(&c.Scenarios, "scenarios", true, "run the mass expiry and mass death scenarios on the largest pool (not in a quick run)")
	fs.BoolVar(&c.OnlyScenarios, "only-scenarios", false, "skip the rounds: set up the pools and run the scenarios only")
	fs.IntVar(&c.ScenarioRepeat, "scenario-repeat", 1, "run each scenario this many times (the table shows every run)")
	scenarioNames := fs.String("scenario-list", "mass expiry,mass death,"+deadMixName, "scenarios to run, comma-separated (mass-expiry, mass-death, dead-mix)")
	pools, clients := intList{10000, 100000, 1000000}, intList{16, 64}
	fs.Var(&pools, "pools", "pool sizes (10k,100k,1M)")
	fs.Var(&clients, "clients", "client counts (16,64)")
	podEnv := fs.String("pod-env", "", "extra environment for every pod, comma-separated KEY=VALUE")
	onlyVariants := fs.String("variants", "", "measure only these variants, comma-separated ("+strings.Join(allVariants, ", ")+"; floor@svc comes with svc and floor)")
	auditTables := fs.String("audit-tables", "token_log,audit_names,token_events", "audit relations (comma-separated) whose heap, index and WAL bytes per cycle the audit variant counts, partitions included")
	churn := fs.Bool("churn", false, "run only the churn scenario (make bench-churn) instead of the suite")
	poolsOnly := fs.Bool("pools-scenario", false, "run only the pools scenarios (make bench-pools) instead of the suite")
	ab := fs.String("ab", "", "run only a settings A/B: pods with these environments against the base, NAME:KEY=VALUE[,KEY=VALUE];NAME:...")
	fs.StringVar(&c.PoolsCompare, "pools-compare", "", "pools scenario: another tokend build whose spread ratio is measured in the same rounds")
	var cc churnConfig
	churnPool := intList{100000}
	fs.Var(&churnPool, "churn-pool", "churn: pool size")
	fs.IntVar(&cc.Clients, "churn-clients", 16, "churn: clients")
	fs.DurationVar(&cc.Duration, "churn-duration", 5*time.Minute, "churn: the long run, shipped settings (0: skip)")
	fs.DurationVar(&cc.ABWindow, "churn-ab", 90*time.Second, "churn: each settings variant's run (0: skip)")
	fs.IntVar(&cc.KeepAlive, "churn-keepalive-every", 4, "churn: every n-th cycle renews its lease before the unblock (0: never)")
	fs.DurationVar(&cc.Sample, "churn-sample", 30*time.Second, "churn: interval between size samples")
	variants := fs.String("churn-variants", "shipped,defaults", "churn: settings variants for the A/B runs: shipped, defaults (tokens' options reset), NAME:opt=v;opt=v (shipped plus these)")
	_ = fs.Parse(args)
	c.Pools, c.Clients = pools, clients
	for _, n := range strings.Split(*scenarioNames, ",") {
		if n = strings.ReplaceAll(strings.TrimSpace(n), "-", " "); n != "" {
			if n != "mass expiry" && n != "mass death" && n != deadMixName {
				return fmt.Errorf("unknown scenario %q (known: mass expiry, mass death, dead mix)", n)
			}
			c.ScenarioNames = append(c.ScenarioNames, n)
		}
	}
	if *podEnv != "" {
		c.PodEnv = strings.Split(*podEnv, ",")
	}
	for _, v := range strings.Split(*onlyVariants, ",") {
		if v = strings.TrimSpace(v); v != "" {
			if !slices.Contains(allVariants, v) {
				return fmt.Errorf("-variants: unknown variant %q (known: %s)", v, strings.Join(allVariants, ", "))
			}
			c.Variants = append(c.Variants, v)
		}
	}
	for _, t := range strings.Split(*auditTables, ",") {
		if t = strings.TrimSpace(t); t != "" {
			c.AuditTables = append(c.AuditTables, t)
		}
	}
	if *ab != "" {
		vs, err := parseABVariants(*ab)
		if err != nil {
			return err
		}
		return cmdAB(c, vs)
	}
	if *poolsOnly {
		return cmdPools(c)
	}
	if *churn {
		cc.Pool = churnPool[0]
		for _, v := range strings.Split(*variants, ",") {
			if v = strings.TrimSpace(v); v == "" {
				continue
			}
			cv, err := parseChurnVariant(v)
			if err != nil {
				return err
			}
			cc.Variants = append(cc.Variants, cv)
		}
		return cmdChurn(c, cc)
	}
	if c.Quick {
		c.Rounds = 1
		c.Duration = 3 * time.Second
		c.Warmup = 700 * time.Millisecond
		if !flagWasSet(fs, "pools") {
			c.Pools = []int{10000, 1000000}
		}
	}
	return runSuite(c)
}

func flagWasSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

type suite struct {
	cfg        suiteConfig
	ctx        context.Context
	postmaster int
	floor      *process
	floorURL   string
	results    []measurement
	resultsOut *os.File
	started    time.Time
	pgInfo     string
	nextPort   int

	checkpoints0 int64 // before the pools were created
	scenarios    []scenarioResult
}

func runSuite(cfg suiteConfig) error {
	s := &suite{cfg: cfg, ctx: context.Background(), started: time.Now()}
	if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
		return err
	}
	var err error
	s.resultsOut, err = os.Create(filepath.Join(cfg.LogDir, "results.jsonl"))
	if err != nil {
		return err
	}
	defer s.resultsOut.Close()
	if err := s.findPostmaster(); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	floorAddr := fmt.Sprintf("127.0.0.1:%d", cfg.PortBase)
	s.floor, err = startProcess("floor", []string{self, "floor", "-addr", floorAddr}, nil, cfg.LogDir)
	if err != nil {
		return err
	}
	defer s.floor.stop()
	s.floorURL = "http://" + floorAddr
	if err := waitReady(s.floorURL+"/healthz", 10*time.Second); err != nil {
		return fmt.Errorf("floor server: %w", err)
	}
	// Drop the old bench databases first: DROP DATABASE forces a checkpoint,
	// after which the first change to every page writes a full page image to
	// the WAL. Created and loaded after the last checkpoint, the pools run
	// the whole suite without one (max_wal_size and checkpoint_timeout keep
	// the next one away); see docs/BENCHMARKS.md.
	if err := s.dropDatabases(); err != nil {
		return err
	}
	s.checkpoints0, _ = s.checkpoints()
	var setups []*poolSetup
	defer func() {
		for _, ps := range setups {
			for _, p := range ps.pods {
				p.stop()
			}
		}
	}()
	for _, pool := range cfg.Pools {
		ps, err := s.setupPool(pool)
		if ps != nil {
			setups = append(setups, ps)
		}
		if err != nil {
			return err
		}
	}
	// A round measures every client count, pool and variant one after the
	// other, so that ratios across client counts and pools (c64 / c16,
	// 1M / 10k) are as side by side as those across variants.
	for r := 0; r < cfg.Rounds && !cfg.OnlyScenarios; r++ {
		for _, clients := range cfg.Clients {
			for _, ps := range setups {
				if err := s.runRound(ps, clients, r); err != nil {
					return err
				}
			}
		}
	}
	if cfg.Scenarios && !cfg.Quick {
		logf("== scenarios on the %s pool", poolLabel(setups[len(setups)-1].pool))
		if err := s.runScenarios(setups[len(setups)-1]); err != nil {
			return err
		}
		for _, r := range s.scenarios {
			line, _ := json.Marshal(r)
			fmt.Fprintln(s.resultsOut, string(line))
		}
	}
	return s.report()
}

// findPostmaster finds the server's postmaster pid as the parent of our own
// backend, so that CPU is counted for the whole cluster.
func (s *suite) findPostmaster() error {
	conn, err := pgx.Connect(s.ctx, s.cfg.AdminURL)
	if err != nil {
		return fmt.Errorf("bench server: %w", err)
	}
	defer conn.Close(s.ctx)
	var backend int
	var version, sb, sc string
	if err := conn.QueryRow(s.ctx, "SELECT pg_backend_pid(), current_setting('server_version'), current_setting('shared_buffers'), current_setting('synchronous_commit')").Scan(&backend, &version, &sb, &sc); err != nil {
		return err
	}
	_, _, ppid, err := procTimes(backend)
	if err != nil {
		return fmt.Errorf("the bench server must run on this machine (its CPU is read from /proc): %w", err)
	}
	s.postmaster = ppid
	s.pgInfo = fmt.Sprintf("PostgreSQL %s (shared_buffers %s, synchronous_commit %s)", version, sb, sc)
	return nil
}

func poolLabel(n int) string {
	switch {
	case n >= 1000000 && n%1000000 == 0:
		return fmt.Sprintf("%dM", n/1000000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

func (s *suite) dbURL(name string) string {
	u, _ := url.Parse(s.cfg.AdminURL)
	u.Path = "/" + name
	return u.String()
}

// poolSetup is one pool's database and pods, ready for measuring.
type poolSetup struct {
	pool        int
	name, dbURL string
	pods        map[string]*process
	// The lean ceiling's database for the same number of tokens.
	leanName, leanURL string
}

// setupPool creates the pool's database, starts its pods, loads and settles
// it. Every pool is set up before any is measured, so that the rounds can
// take the pools in turn and compare them side by side.
func (s *suite) setupPool(pool int) (*poolSetup, error) {
	ps := &poolSetup{pool: pool, name: "tokenlease_bench_" + strings.ToLower(poolLabel(pool)), pods: map[string]*process{}}
	logf("== pool %s: database %s", poolLabel(pool), ps.name)
	admin, err := pgx.Connect(s.ctx, s.cfg.AdminURL)
	if err != nil {
		return nil, err
	}
	_, err = admin.Exec(s.ctx, "CREATE DATABASE "+pgx.Identifier{ps.name}.Sanitize())
	admin.Close(s.ctx)
	if err != nil {
		return nil, err
	}
	ps.dbURL = s.dbURL(ps.name)
	migrate := exec.Command(s.cfg.Tokend, "migrate")
	migrate.Env = append(os.Environ(), "DATABASE_URL="+ps.dbURL, "LOG_LEVEL=warn")
	if out, err := migrate.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("tokend migrate: %v\n%s", err, out)
	}

	// Pods: a, b, c, d batch (b for the two-pod runs, b, c, d for the
	// four-pod runs), o does not.
	var variants []string
	for _, c := range s.cfg.Clients {
		variants = append(variants, s.variantsFor(pool, c)...)
	}
	if slices.Contains(variants, vLean) {
		if err := s.setupLean(ps); err != nil {
			return ps, err
		}
	}
	type podSpec struct{ name, batching string }
	specs := []podSpec{{"a", "on"}}
	if slices.Contains(variants, vTwoPods) || slices.Contains(variants, vFour) {
		specs = append(specs, podSpec{"b", "on"})
	}
	if slices.Contains(variants, vFour) {
		specs = append(specs, podSpec{"c", "on"}, podSpec{"d", "on"})
	}
	if slices.Contains(variants, vNoBatch) {
		specs = append(specs, podSpec{"o", "off"})
	}
	for _, sp := range specs {
		s.nextPort++
		addr := fmt.Sprintf("127.0.0.1:%d", s.cfg.PortBase+s.nextPort)
		env := append([]string{
			"DATABASE_URL=" + ps.dbURL, "HTTP_ADDR=" + addr, "KEEPALIVE_TTL=24h", "LOG_LEVEL=warn",
			"POD_NAME=bench-" + sp.name, "BATCHING=" + sp.batching,
		}, s.cfg.PodEnv...)
		p, err := startProcess("tokend-"+poolLabel(pool)+"-"+sp.name, []string{s.cfg.Tokend}, env, s.cfg.LogDir)
		if err != nil {
			return ps, err
		}
		p.url = "http://" + addr
		ps.pods[sp.name] = p
	}
	for _, p := range ps.pods {
		if err := waitReady(p.url+"/readyz", 30*time.Second); err != nil {
			return ps, fmt.Errorf("%s: %w (log: %s)", p.name, err, p.logPath)
		}
	}
	t0 := time.Now()
	if err := s.load(ps.dbURL, ps.pods["a"].url, pool); err != nil {
		return ps, err
	}
	logf("   loaded %d tokens in %.1fs", pool, time.Since(t0).Seconds())
	// Settle: warm the caches and the plans before the first window.
	settle := 2 * s.cfg.Duration
	if _, err := runLoad(loadConfig{Targets: []string{ps.pods["a"].url}, Clients: 16, Duration: settle}); err != nil {
		return ps, fmt.Errorf("settle: %w", err)
	}
	return ps, nil
}

// runRound measures one round of a pool's variants, in an order that
// rotates from round to round.
func (s *suite) runRound(ps *poolSetup, clients, r int) error {
	vs := s.variantsFor(ps.pool, clients)
	if len(vs) == 0 {
		return nil
	}
	order := slices.Clone(vs)
	k := r % len(order)
	order = append(order[k:], order[:k]...)
	for _, v := range order {
		m, err := s.measure(ps, clients, v)
		if err != nil {
			return fmt.Errorf("pool %s, %d clients, %s: %w", poolLabel(ps.pool), clients, v, err)
		}
		m.Round = r + 1
		s.record(m)
		time.Sleep(200 * time.Millisecond)
		if v == vSvc && ps.pool == s.cfg.Pools[0] && m.CyclesPerSec > 0 && slices.Contains(vs, vFloor) {
			// The floor at the service's own rate: with every process
			// waiting on another, each write wakes a sleeping reader, which
			// the flat-out floor never pays.
			f := measurement{Pool: ps.pool, Clients: clients, Variant: vFloorAt, Round: r + 1}
			f, err = s.measureHTTP(f, []*process{s.floor}, false, m.CyclesPerSec)
			if err != nil {
				return fmt.Errorf("pool %s, %d clients, %s: %w", poolLabel(ps.pool), clients, vFloorAt, err)
			}
			s.record(f)
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}

// variantsFor lists what is measured for a pool and a client count: all of
// it on the first pool (the audit bytes at the first client count only, 4
// pods at the others), the lean ceiling, the reference and the service on
// the others (batching off too on the last); a quick run measures the other
// pools at the first client count only.
func (s *suite) variantsFor(pool, clients int) []string {
	vs := s.allVariantsFor(pool, clients)
	if len(s.cfg.Variants) > 0 {
		vs = slices.DeleteFunc(vs, func(v string) bool { return !slices.Contains(s.cfg.Variants, v) })
	}
	return vs
}

func (s *suite) allVariantsFor(pool, clients int) []string {
	first := pool == s.cfg.Pools[0]
	last := pool == s.cfg.Pools[len(s.cfg.Pools)-1]
	switch {
	case first && clients == s.cfg.Clients[0] && len(s.cfg.Clients) > 1:
		return []string{vLean, vRef, vFloor, vSvc, vNoBatch, vTwoPods, vAudit}
	case first && clients == s.cfg.Clients[0]:
		return []string{vLean, vRef, vFloor, vSvc, vNoBatch, vTwoPods, vFour, vAudit}
	case first:
		return []string{vLean, vRef, vSvc, vNoBatch, vTwoPods, vFour}
	case !s.cfg.Quick && last:
		return []string{vLean, vRef, vSvc, vNoBatch}
	case !s.cfg.Quick:
		return []string{vLean, vRef, vSvc}
	case clients == s.cfg.Clients[0]:
		return []string{vLean, vRef, vSvc}
	}
	return nil
}

// load fills the pool: through POST /tokens/generate (10,000 a call) up to
// 100k tokens, with one SQL statement beyond (no `generated` audit rows
// then), or through the API after all when that statement no longer fits
// the schema. Tokens live a day, so none dies during the run.
func (s *suite) load(dbURL, podURL string, pool int) error {
	conn, err := pgx.Connect(s.ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(s.ctx)
	viaAPI := pool
	if pool > 100000 {
		if err := loadTokensSQL(s.ctx, conn, pool); err != nil {
			logf("   loading by SQL failed (%v): loading through POST /tokens/generate instead", err)
		} else {
			viaAPI = 0
		}
	}
	client := &http.Client{Timeout: time.Minute}
	for left := viaAPI; left > 0; {
		n := min(left, 10000)
		req, err := http.NewRequest(http.MethodPost, podURL+"/tokens/generate", strings.NewReader(fmt.Sprintf(`{"count":%d}`, n)))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", benchAuthorization)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, _ := readAllClose(resp)
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("generate: HTTP %d %s", resp.StatusCode, truncate(body, 200))
		}
		left -= n
	}
	if _, err := conn.Exec(s.ctx, "VACUUM ANALYZE tokens"); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	return nil
}

// loadTokensSQL adds n live tokens to the default pool in one transaction,
// counted in its counters as the service counts generated tokens.
func loadTokensSQL(ctx context.Context, conn *pgx.Conn, n int) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
INSERT INTO tokens (pool_id, value, alive_until)
SELECT 1, translate(encode(uuid_send(gen_random_uuid()), 'base64'), '+/=', '-_'), now() + interval '1 day'
FROM generate_series(1, $1::int)`, n); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "UPDATE token_counters SET total = total + $1 WHERE pool_id = 1 AND slot = 0", n)
		if err == nil && tag.RowsAffected() != 1 {
			err = fmt.Errorf("token_counters: %d rows for pool 1, slot 0", tag.RowsAffected())
		}
		return err
	})
}

// checkpoints counts the cluster's checkpoints so far.
func (s *suite) checkpoints() (int64, error) {
	conn, err := pgx.Connect(s.ctx, s.cfg.AdminURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(s.ctx)
	var n int64
	err = conn.QueryRow(s.ctx, "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter").Scan(&n)
	return n, err
}

func (s *suite) dropDatabases() error {
	admin, err := pgx.Connect(s.ctx, s.cfg.AdminURL)
	if err != nil {
		return err
	}
	defer admin.Close(s.ctx)
	for _, pool := range s.cfg.Pools {
		for _, name := range []string{"tokenlease_bench_" + strings.ToLower(poolLabel(pool)), leanDBName(pool)} {
			if _, err := admin.Exec(s.ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
				return err
			}
		}
	}
	return nil
}

func readAllClose(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err := b.ReadFrom(resp.Body)
	return b.Bytes(), err
}

func (s *suite) record(m measurement) {
	s.results = append(s.results, m)
	line, _ := json.Marshal(m)
	fmt.Fprintln(s.resultsOut, string(line))
	extra := ""
	if m.Variant != vRef && m.Variant != vLean {
		extra = fmt.Sprintf(" assign p50/p99 %.2f/%.2f ms, unblock %.2f/%.2f ms,", m.AssignP50, m.AssignP99, m.UnblockP50, m.UnblockP99)
	} else {
		extra = fmt.Sprintf(" cycle p50/p99 %.2f/%.2f ms,", m.AssignP50, m.AssignP99)
	}
	logf("   %-4s c=%-3d r%d %-8s %7.0f cycles/s,%s err %d, double %d, PG %.0f us/cycle, proc %.0f us/cycle, loadgen %.0f us/cycle",
		poolLabel(m.Pool), m.Clients, m.Round, m.Variant, m.CyclesPerSec, extra, m.Errors, m.Doubles, m.PGCPUUs, m.ProcCPUUs, m.LoadgenCPUUs)
	if a := m.Audit; a != nil {
		logf("        audit bytes/cycle: heap %.0f, indexes %.0f, WAL %.0f (%.1f records, FPI %.0f; %s), total %.0f; whole WAL %.0f",
			a.HeapB, a.IndexB, a.WALB, a.WALRecs, a.WALFPIB, a.WALMethod, a.total(), a.WALTotalB)
	}
}

func (s *suite) measure(ps *poolSetup, clients int, variant string) (measurement, error) {
	pool, dbURL, dbName, pods := ps.pool, ps.dbURL, ps.name, ps.pods
	m := measurement{Pool: pool, Clients: clients, Variant: variant}
	switch variant {
	case vLean:
		return s.measurePgbench(m, ps.leanURL, ps.leanName, filepath.Join(s.cfg.ScriptDir, "lean", "cycle_audit.sql"), "lease_seq")
	case vAudit:
		return s.measureAudit(m, ps)
	case vRef:
		return s.measureRef(m, dbURL, dbName)
	case vFloor:
		return s.measureHTTP(m, []*process{s.floor}, false, 0)
	case vSvc:
		return s.measureHTTP(m, []*process{pods["a"]}, true, 0)
	case vNoBatch:
		return s.measureHTTP(m, []*process{pods["o"]}, true, 0)
	case vTwoPods:
		return s.measureHTTP(m, []*process{pods["a"], pods["b"]}, true, 0)
	case vFour:
		return s.measureHTTP(m, []*process{pods["a"], pods["b"], pods["c"], pods["d"]}, true, 0)
	}
	return m, fmt.Errorf("unknown variant %q", variant)
}

func (s *suite) measureHTTP(m measurement, procs []*process, pg bool, rate float64) (measurement, error) {
	var probes []cpuProbe
	var targets []string
	for _, p := range procs {
		probes = append(probes, cpuProbe{Name: p.name, Pid: p.cmd.Process.Pid})
		url := p.url
		if p == s.floor {
			url = s.floorURL
		}
		targets = append(targets, url)
	}
	if pg {
		probes = append(probes, cpuProbe{Name: "postgres", Pid: s.postmaster, Postgres: true})
	}
	meter := &cpuMeter{probes: probes}
	res, err := runLoad(loadConfig{
		Targets: targets, Clients: m.Clients, Duration: s.cfg.Duration, Warmup: s.cfg.Warmup, Rate: rate,
		Window: meter.window,
	})
	if err != nil {
		return m, err
	}
	if meter.err != nil {
		return m, meter.err
	}
	m.CyclesPerSec, m.Cycles = res.CyclesPerSec, res.Cycles
	m.AssignP50, m.AssignP99, m.UnblockP50, m.UnblockP99 = res.AssignP50Ms, res.AssignP99Ms, res.UnblockP50Ms, res.UnblockP99Ms
	m.Errors, m.Doubles, m.LoadgenCPUUs = res.Errors, res.DoubleAssignments, res.LoadgenCPUUs
	if res.Cycles > 0 {
		n := float64(res.Cycles)
		m.ProcCPUUs = meter.sum(func(p cpuProbe) bool { return !p.Postgres }) * 1e6 / n
		m.PGCPUUs = meter.sum(func(p cpuProbe) bool { return p.Postgres }) * 1e6 / n
	}
	for _, e := range res.ErrorSamples {
		logf("   ! %s", e)
	}
	return m, nil
}

// measureRef runs the reference pgbench script; the window's cycles are
// counted by lease_id_seq (one value per claim), its latencies from
// pgbench's per-transaction log.
func (s *suite) measureRef(m measurement, dbURL, dbName string) (measurement, error) {
	return s.measurePgbench(m, dbURL, dbName, filepath.Join(s.cfg.ScriptDir, "claim_release.sql"), "lease_id_seq")
}

// measurePgbench runs a pgbench script (one transaction = one cycle) on
// dbName; the window's cycles are counted by seqName (one value per claim),
// the cluster's CPU from /proc over the same window, the latencies from
// pgbench's per-transaction log.
func (s *suite) measurePgbench(m measurement, dbURL, dbName, script, seqName string) (measurement, error) {
	conn, err := pgx.Connect(s.ctx, dbURL)
	if err != nil {
		return m, err
	}
	defer conn.Close(s.ctx)
	u, _ := url.Parse(dbURL)
	logDir, err := os.MkdirTemp(s.cfg.LogDir, "pgbench-")
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(logDir)
	total := s.cfg.Warmup + s.cfg.Duration + time.Second
	args := []string{
		"-h", u.Hostname(), "-p", u.Port(), "-U", u.User.Username(), "-n", "-M", "prepared",
		"-c", strconv.Itoa(m.Clients), "-j", strconv.Itoa(min(runtime.NumCPU(), m.Clients)),
		"-T", strconv.Itoa(int((total + time.Second - 1) / time.Second)),
		"-l", "--log-prefix", filepath.Join(logDir, "tx"),
		"-f", script, dbName,
	}
	cmd := exec.Command(s.cfg.Pgbench, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return m, err
	}
	seq := func() (int64, error) {
		var v int64
		err := conn.QueryRow(s.ctx, "SELECT last_value FROM "+pgx.Identifier{seqName}.Sanitize()).Scan(&v)
		return v, err
	}
	time.Sleep(s.cfg.Warmup)
	meter := &cpuMeter{probes: []cpuProbe{{Name: "postgres", Pid: s.postmaster, Postgres: true}}}
	seq0, err0 := seq()
	meter.open()
	t0 := time.Now()
	time.Sleep(s.cfg.Duration)
	meter.close()
	t1 := time.Now()
	seq1, err1 := seq()
	waitErr := cmd.Wait()
	if err := firstErr(err0, err1, meter.err); err != nil {
		return m, err
	}
	if waitErr != nil {
		return m, fmt.Errorf("pgbench: %v\n%s", waitErr, out.String())
	}
	cycles := seq1 - seq0
	m.Cycles = cycles
	m.CyclesPerSec = float64(cycles) / t1.Sub(t0).Seconds()
	if cycles > 0 {
		m.PGCPUUs = meter.delta[0] * 1e6 / float64(cycles)
	}
	if mm := regexp.MustCompile(`number of failed transactions: (\d+)`).FindStringSubmatch(out.String()); mm != nil {
		m.Errors, _ = strconv.ParseInt(mm[1], 10, 64)
	}
	lat, err := pgbenchLatencies(logDir, t0, t1)
	if err != nil {
		return m, err
	}
	m.AssignP50, m.AssignP99 = percentileMs(lat, 0.50), percentileMs(lat, 0.99)
	return m, nil
}

// pgbenchLatencies reads pgbench's per-transaction logs ("client tx time_us
// script epoch_s epoch_us") and returns the latencies (ns) of the
// transactions that ended inside [from, to].
func pgbenchLatencies(dir string, from, to time.Time) ([]int64, error) {
	files, err := filepath.Glob(filepath.Join(dir, "tx*"))
	if err != nil {
		return nil, err
	}
	var lat []int64
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 6 {
				continue
			}
			us, _ := strconv.ParseInt(fields[2], 10, 64)
			sec, _ := strconv.ParseInt(fields[4], 10, 64)
			usec, _ := strconv.ParseInt(fields[5], 10, 64)
			end := time.Unix(sec, usec*1000)
			if end.Before(from) || end.After(to) {
				continue
			}
			lat = append(lat, us*1000)
		}
		fh.Close()
	}
	return lat, nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// process is a child the suite started (a pod or the floor server).
type process struct {
	name    string
	cmd     *exec.Cmd
	url     string
	logPath string
	logFile *os.File
}

func startProcess(name string, argv []string, env []string, logDir string) (*process, error) {
	logPath := filepath.Join(logDir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	// Every pod serves its metrics, as in production, on a port of its own
	// (the default :9464 would clash between the suite's pods); env may
	// override it (METRICS_ADDR= turns the listener off).
	cmd.Env = append(append(os.Environ(), "BOOTSTRAP_ADMIN_KEY="+benchKey, "METRICS_ADDR=127.0.0.1:0"), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	return &process{name: name, cmd: cmd, logPath: logPath, logFile: lf}, nil
}

func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	p.logFile.Close()
}

func waitReady(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready: %w", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func logf(format string, args ...any) {
	fmt.Printf(format+"\n", args...)
}
