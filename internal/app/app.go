// Package app assembles one pod of the service from its configuration: the
// database (created and migrated), the connections, the domain service and
// its settings, the events layer and the long-poll, River's background jobs
// and the HTTP handler. cmd/tokend and the tests both build pods through it,
// so a test runs exactly what production runs.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/tokenlease/tokenlease/internal/config"
	"github.com/tokenlease/tokenlease/internal/events"
	"github.com/tokenlease/tokenlease/internal/httpapi"
	"github.com/tokenlease/tokenlease/internal/jobs"
	"github.com/tokenlease/tokenlease/internal/longpoll"
	"github.com/tokenlease/tokenlease/internal/migrate"
	"github.com/tokenlease/tokenlease/internal/tokens"
)

// Options change how a pod runs, for tests and tools.
type Options struct {
	// DisableJobs runs the pod without River's background jobs (the sweeps
	// and the audit partitions' upkeep), to show that expiry never waits for
	// them.
	DisableJobs bool
	// DisableEvents runs the pod without the events layer (no change stream,
	// no doorbell, assign?wait= does not wait), to measure what it costs.
	DisableEvents bool
	// KeysTouchEvery is how often the pod writes its keys' last_used_at
	// (default a minute); tests shorten it rather than wait a minute.
	KeysTouchEvery time.Duration
}

// App is one running pod.
type App struct {
	Config  config.Config
	Pool    *pgxpool.Pool // the pod's database connections (pgx), not a pool of tokens
	Service *tokens.Service
	Handler http.Handler
	Events  *events.Bus      // the events layer; nil when disabled
	Waiter  *longpoll.Waiter // assign?wait=; nil without the events layer
	river   *river.Client[pgx.Tx]
	auth    authParts
	// metricsLn is METRICS_ADDR's listener once started; nil when disabled.
	metricsLn net.Listener
	riverUI   *riverUI // nil without River
}

// defaultMaxConns sizes the connection pool when DATABASE_URL does not: PostgreSQL on a
// small machine does best with few busy connections.
const defaultMaxConns = 12

// New creates the database if needed, applies migrations, and builds the pod.
// Start begins the background work; Close releases everything.
func New(ctx context.Context, cfg config.Config, opts Options) (*App, error) {
	direct, err := pgx.ParseConfig(cfg.DirectDatabaseURL())
	if err != nil {
		return nil, fmt.Errorf("LISTEN_DATABASE_URL: %w", err)
	}
	conns, err := connectMigrated(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a := &App{Config: cfg, Pool: conns}
	var notifier tokens.ChangeNotifier
	if !opts.DisableEvents {
		a.Events = events.New(conns, events.Config{Logger: slog.Default().With("component", "events"), Direct: direct})
		notifier = a.Events
	}
	a.Service = tokens.NewService(conns, Settings(cfg), notifier)
	if !opts.DisableJobs {
		a.river, err = jobs.NewClient(conns, a.Service, jobs.Options{
			SweepInterval:  time.Duration(cfg.SweepInterval),
			SweepBatchSize: cfg.SweepBatchSize,
			AuditRetention: time.Duration(cfg.AuditRetention),
			Logger:         slog.Default().With("component", "river"),
			PollOnly:       cfg.Pooled(),
		})
		if err != nil {
			conns.Close()
			return nil, err
		}
	}
	hopts := httpapi.Options{Ready: a.ready, Stream: httpapi.StreamOptions{MaxStreams: cfg.MaxStreams},
		Unobserved: bool(cfg.BenchUnobserved)}
	if a.riverUI, err = a.newRiverUI(); err != nil {
		conns.Close()
		return nil, fmt.Errorf("River UI: %w", err)
	}
	if a.riverUI != nil {
		hopts.RiverUI = a.riverUI
	}
	if hopts.Auth, err = a.newAuth(ctx, opts); err != nil {
		a.closeAuth()
		conns.Close()
		return nil, err
	}
	if a.Events != nil {
		a.Waiter = longpoll.New(a.Events, a.Service, slog.Default().With("component", "longpoll"))
		hopts.Waiter = a.Waiter
		hopts.Events = a.Events
	}
	a.Handler = httpapi.NewHandler(a.Service, hopts)
	return a, nil
}

// Migrate creates the database if needed and applies the migrations, without
// building a pod: `tokend migrate`.
func Migrate(ctx context.Context, cfg config.Config) error {
	conns, err := connectMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	conns.Close()
	return nil
}

// connectMigrated creates the database if needed, connects, and applies the
// migrations.
func connectMigrated(ctx context.Context, cfg config.Config) (*pgxpool.Pool, error) {
	if err := waitForDatabase(ctx, cfg); err != nil {
		return nil, err
	}
	poolCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if !hasPoolMaxConns(cfg.DatabaseURL) {
		poolCfg.MaxConns = defaultMaxConns
	}
	conns, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := migrateUp(ctx, cfg, conns); err != nil {
		conns.Close()
		return nil, err
	}
	return conns, nil
}

// migrateUp applies the migrations under their session lock: on conns, or,
// when DATABASE_URL may lead to a transaction pooler (whose statements may
// each run on another server session, losing the lock), on a direct
// connection of its own.
func migrateUp(ctx context.Context, cfg config.Config, conns *pgxpool.Pool) error {
	if !cfg.Pooled() {
		return migrate.Up(ctx, conns)
	}
	directCfg, err := pgxpool.ParseConfig(cfg.DirectDatabaseURL())
	if err != nil {
		return fmt.Errorf("LISTEN_DATABASE_URL: %w", err)
	}
	directCfg.MaxConns = 2
	direct, err := pgxpool.NewWithConfig(ctx, directCfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer direct.Close()
	return migrate.Up(ctx, direct)
}

// Settings is the domain's share of the configuration.
func Settings(cfg config.Config) tokens.Settings {
	return tokens.Settings{
		LeaseTTL:     time.Duration(cfg.LeaseTTL),
		MaxLeaseTTL:  time.Duration(cfg.MaxLeaseTTL),
		KeepaliveTTL: time.Duration(cfg.KeepaliveTTL),
		MaxTokens:    cfg.MaxTokens,
		Pod:          cfg.PodName,
		Batching:     bool(cfg.Batching),
		BatchMax:     cfg.BatchMax,
		BatchWindow:  time.Duration(cfg.BatchWindow),
		BatchPerPool: !bool(cfg.BatchAcrossPools),
	}
}

func (a *App) ready(ctx context.Context) error {
	ok, err := migrate.Applied(ctx, a.Pool)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if !ok {
		return errors.New("migrations are not applied")
	}
	return nil
}

// Start begins the background work.
func (a *App) Start(ctx context.Context) error {
	if err := a.listenMetrics(); err != nil {
		return err
	}
	if err := a.startAuth(ctx); err != nil {
		return err
	}
	if err := a.Service.RegisterPod(ctx); err != nil {
		return err
	}
	if a.Events != nil {
		if err := a.Events.Start(ctx); err != nil {
			return err
		}
	}
	if a.river == nil {
		return nil
	}
	if err := a.river.Start(ctx); err != nil {
		return fmt.Errorf("start river: %w", err)
	}
	return nil
}

// Close stops the background work and closes the connections.
func (a *App) Close(ctx context.Context) {
	a.closeEvents()
	a.riverUI.close()
	if a.river != nil {
		if err := a.river.Stop(ctx); err != nil {
			slog.Warn("river did not stop cleanly", "error", err)
		}
	}
	a.closeAuth()
	if a.metricsLn != nil {
		a.metricsLn.Close() //nolint:errcheck // closed already when Serve ran
	}
	a.Service.Close()
	a.Pool.Close()
}

// Serve answers HTTP on ln until ctx ends, then drains in-flight requests for
// up to the configured grace and returns.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	stopMetrics := a.serveMetrics()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		stopMetrics(context.WithoutCancel(ctx))
		return err
	case <-ctx.Done():
	}
	slog.Info("shutting down: draining HTTP")
	// Event streams and waiting assigns would hold the drain open: end them
	// first (waiters answer 503 unless their claim is under way).
	a.closeEvents()
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(a.Config.ShutdownGrace))
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil {
		slog.Warn("HTTP drain cut short", "error", err)
		srv.Close()
	}
	// Scrapes go on during the drain; the metrics stop last.
	stopMetrics(drainCtx)
	return nil
}

// closeEvents ends the events layer, if the pod has one; it is idempotent.
func (a *App) closeEvents() {
	if a.Events != nil {
		a.Events.Close()
	}
}

// hasPoolMaxConns reports whether DATABASE_URL sizes the connection pool itself
// (pgxpool reads pool_max_conns from the URL or keyword string).
func hasPoolMaxConns(databaseURL string) bool {
	return strings.Contains(databaseURL, "pool_max_conns")
}
