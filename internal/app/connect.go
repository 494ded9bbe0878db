package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tokenlease/tokenlease/internal/config"
	"github.com/tokenlease/tokenlease/internal/migrate"
)

// waitForDatabase makes sure the database exists, retrying with backoff for
// up to DB_CONNECT_TIMEOUT while PostgreSQL cannot be reached yet: under
// compose or Kubernetes the service may start before the database, and a pod
// that exits then would stay down or crash-loop. Errors that waiting cannot
// cure (bad URL, authentication, a missing database it may not create) fail
// at once.
func waitForDatabase(ctx context.Context, cfg config.Config) error {
	limit := time.Duration(cfg.DBConnectTimeout)
	if limit == 0 {
		return migrate.EnsureDatabase(ctx, cfg.DirectDatabaseURL())
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	start := time.Now()
	var last error
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		last = migrate.EnsureDatabase(ctx, cfg.DirectDatabaseURL())
		if last != nil && !transient(last) {
			return struct{}{}, backoff.Permanent(last)
		}
		return struct{}{}, last
	},
		backoff.WithBackOff(b),
		backoff.WithMaxElapsedTime(0), // ctx's deadline bounds it, so the last try comes at the limit
		backoff.WithNotify(func(err error, next time.Duration) {
			slog.Warn("database not reachable yet: retrying", "error", err,
				"retry_in", next.Round(time.Millisecond).String(),
				"waited", time.Since(start).Round(time.Millisecond).String(),
				"db_connect_timeout", limit.String())
		}))
	switch {
	case err == nil:
		if time.Since(start) > b.InitialInterval {
			slog.Info("database reachable", "waited", time.Since(start).Round(time.Millisecond).String())
		}
		return nil
	case last != nil && transient(last):
		return fmt.Errorf("database still unreachable after %s (DB_CONNECT_TIMEOUT): %w", limit, last)
	case last != nil:
		return last
	}
	return err
}

// transient reports whether err may go away by waiting: the server is not
// reachable yet, is starting up or shutting down, or has no slot free.
func transient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "57P03" || pgErr.Code == "57P01" || strings.HasPrefix(pgErr.Code, "53")
	}
	var connErr *pgconn.ConnectError
	return errors.As(err, &connErr)
}
