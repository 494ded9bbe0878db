// Command tokend is the token lease server. With no arguments it migrates the
// database and serves; `tokend migrate` only migrates; `tokend keys ...`
// administers API keys offline.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tokenlease/tokenlease/internal/app"
	"github.com/tokenlease/tokenlease/internal/config"
	"github.com/tokenlease/tokenlease/internal/logging"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tokend:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := config.Load()
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by config.Load
	slog.SetDefault(logging.New(os.Stderr, cfg.LogFormat, level).With("pod", cfg.PodName))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch args := os.Args[1:]; {
	case len(args) == 0 || args[0] == "serve":
		return serve(ctx, cfg)
	case args[0] == "migrate":
		return migrateOnly(ctx, cfg)
	case args[0] == "keys":
		return app.Keys(ctx, cfg, args[1:], os.Stdout)
	default:
		return fmt.Errorf("unknown command %q: use no argument (serve), migrate or keys", args[0])
	}
}

func migrateOnly(ctx context.Context, cfg config.Config) error {
	if err := app.Migrate(ctx, cfg); err != nil {
		return err
	}
	slog.Info("migrations applied")
	return nil
}

func serve(ctx context.Context, cfg config.Config) error {
	a, err := app.New(ctx, cfg, app.Options{})
	if err != nil {
		return err
	}
	defer a.Close(context.WithoutCancel(ctx))
	startPprof(cfg.PprofAddr)
	if err := a.Start(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	slog.Info("serving", "addr", ln.Addr().String(), "lease_ttl", time.Duration(cfg.LeaseTTL).String(), "keepalive_ttl", time.Duration(cfg.KeepaliveTTL).String())
	return a.Serve(ctx, ln)
}
