// Package migrate owns the database's lifecycle at start-up: it creates the
// database when it is missing and applies the service's goose migrations and
// River's own migrations, under one advisory lock so that any number of pods
// may start at once against an empty database.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/tokenlease/tokenlease/migrations"
)

// lockKey is the advisory lock that serialises migrations across pods.
const lockKey = 7245000

// EnsureDatabase creates the database named in databaseURL when it does not
// exist and the role may create it. Concurrent callers are fine: losing the
// race to create it counts as success.
func EnsureDatabase(ctx context.Context, databaseURL string) error {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	probe, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return probe.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
		return fmt.Errorf("connect to %s: %w", cfg.Database, err)
	}
	admin := cfg.Copy()
	admin.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("database %q is missing and the server's postgres database is unreachable: %w", cfg.Database, err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize())
	// Another pod won the race: duplicate_database when its database was
	// committed before our check, a unique violation on pg_database when both
	// checked before either committed (PostgreSQL accepts that race).
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" ||
		pgErr.Code == "23505" && pgErr.ConstraintName == "pg_database_datname_index") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %q: %w", cfg.Database, err)
	}
	slog.Info("created database", "database", cfg.Database)
	return nil
}

// Up applies every pending migration of the service and of River.
func Up(ctx context.Context, conns *pgxpool.Pool) error {
	conn, err := conns.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		return fmt.Errorf("migrate: take lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockKey) //nolint:errcheck // the session ends with the connection anyway

	sqlDB := stdlib.OpenDBFromPool(conns)
	defer sqlDB.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: schema: %w", err)
	}
	for _, r := range results {
		slog.Info("applied migration", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}

	migrator, err := rivermigrate.New(riverpgxv5.New(conns), nil)
	if err != nil {
		return fmt.Errorf("migrate: river: %w", err)
	}
	res, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return fmt.Errorf("migrate: river: %w", err)
	}
	if len(res.Versions) > 0 {
		slog.Info("applied river migrations", "count", len(res.Versions))
	}
	return nil
}

// latestVersion is the newest migration embedded in the binary, read from
// the leading digits of the file names as goose numbers them.
var latestVersion = sync.OnceValue(func() int64 {
	entries, _ := fs.Glob(migrations.FS, "*.sql")
	var latest int64
	for _, name := range entries {
		digits := name[:strings.IndexFunc(name, func(r rune) bool { return r < '0' || r > '9' })]
		if v, err := strconv.ParseInt(digits, 10, 64); err == nil && v > latest {
			latest = v
		}
	}
	return latest
})

// Applied reports whether the schema is at the newest embedded version. It is
// one cheap query, fit for a readiness probe.
func Applied(ctx context.Context, conns *pgxpool.Pool) (bool, error) {
	var current int64
	err := conns.QueryRow(ctx,
		"SELECT COALESCE(max(version_id), 0) FROM goose_db_version WHERE is_applied").Scan(&current)
	if err != nil {
		return false, err
	}
	return current >= latestVersion(), nil
}
