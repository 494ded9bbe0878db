// Package testdb gives every test its own freshly migrated PostgreSQL
// database, cloned from a template database that is migrated once per schema
// version (CREATE DATABASE ... TEMPLATE takes a fraction of a second).
//
// The server is, in order: TEST_DATABASE_URL; the local server at
// 127.0.0.1:5432 (user postgres); a PostgreSQL container from
// testcontainers-go where a Docker engine answers. With none of them the test
// fails, saying how to provide one: a database test never skips.
package testdb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/tokenlease/tokenlease/internal/migrate"
	"github.com/tokenlease/tokenlease/migrations"
)

const defaultServerURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

const howToProvide = `no PostgreSQL server for the tests. Provide one of:
  - TEST_DATABASE_URL=postgres://user@host:port/postgres (a role that may CREATE DATABASE)
  - a local server at 127.0.0.1:5432 with user postgres: 'make test' starts the
    system cluster or boots a private one under .data/ (see README)
  - a Docker engine, for testcontainers-go`

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error

	templateMu   sync.Mutex
	templateName string
)

// NewURL returns the URL of a new, migrated database that is dropped when the
// test ends.
func NewURL(t testing.TB) string {
	t.Helper()
	admin := adminURL(t)
	tpl := template(t, admin, "")

	name := "tl_test_" + randomSuffix()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("testdb: connect: %v", err)
	}
	defer conn.Close(ctx)
	clone := func(tpl string) error {
		_, err := conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s",
			pgx.Identifier{name}.Sanitize(), pgx.Identifier{tpl}.Sanitize()))
		return err
	}
	err = clone(tpl)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "3D000" {
		// Another run's `make test` dropped the template when it finished.
		err = clone(template(t, admin, tpl))
	}
	if err != nil {
		t.Fatalf("testdb: clone template: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("testdb: drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testdb: drop %s: %v", name, err)
		}
	})
	return withDatabase(admin, name)
}

// NewPool returns a pool on a new, migrated database, closed when the test ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), NewURL(t))
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func adminURL(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() { serverURL, serverErr = findServer() })
	if serverErr != nil {
		t.Fatalf("testdb: %v", serverErr)
	}
	return serverURL
}

func findServer() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		if err := ping(ctx, u); err != nil {
			return "", fmt.Errorf("TEST_DATABASE_URL does not answer: %v\n%s", err, howToProvide)
		}
		return u, nil
	}
	localErr := ping(ctx, defaultServerURL)
	if localErr == nil {
		return defaultServerURL, nil
	}
	u, containerErr := startContainer()
	if containerErr == nil {
		return u, nil
	}
	return "", fmt.Errorf("%s\n(local server: %v; testcontainers: %v)", howToProvide, localErr, containerErr)
}

func ping(ctx context.Context, u string) error {
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

func startContainer() (u string, err error) {
	defer func() {
		if p := recover(); p != nil { // testcontainers may panic without a Docker engine
			err = fmt.Errorf("%v", p)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := testcontainers.NewDockerClientWithOpts(ctx); err != nil {
		return "", err
	}
	c, err := tcpostgres.Run(ctx, "postgres:15-alpine",
		tcpostgres.WithUsername("postgres"), tcpostgres.WithPassword("postgres"),
		tcpostgres.BasicWaitStrategies())
	if err != nil {
		return "", err
	}
	return c.ConnectionString(ctx, "sslmode=disable")
}

// template returns the name of the migrated template database for the
// current schema, building it once (under an advisory lock, since several
// test binaries run at once), or again when it is still named gone.
func template(t testing.TB, admin, gone string) string {
	t.Helper()
	templateMu.Lock()
	defer templateMu.Unlock()
	if templateName == "" || templateName == gone {
		name, err := buildTemplate(admin)
		if err != nil {
			t.Fatalf("testdb: template: %v", err)
		}
		templateName = name
	}
	return templateName
}

// templateLock serialises building and dropping template databases across
// processes.
const templateLock = 7245002

// DropTemplate drops the template database of the current schema, if the
// server named by TEST_DATABASE_URL (or the local one) holds it. make test
// calls it once every test package has finished; a test binary that still
// clones it keeps it (DROP DATABASE refuses while it is in use).
func DropTemplate(ctx context.Context) error {
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = defaultServerURL
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return nil // no server, no template
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLock); err != nil {
		return err
	}
	// A test binary may carry no module versions (then River's is not part
	// of the hash) while this command's binary does: drop both names.
	for _, h := range []string{schemaHash(true), schemaHash(false)} {
		name := "tl_template_" + h
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
			return err
		}
	}
	return nil
}

func buildTemplate(admin string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := "tl_template_" + schemaHash(true)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLock); err != nil {
		return "", err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", templateLock) //nolint:errcheck // ends with the session
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_building"
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{building}.Sanitize()+" WITH (FORCE)"); err != nil {
		return "", err
	}
	buildURL := withDatabase(admin, building)
	if err := migrate.EnsureDatabase(ctx, buildURL); err != nil {
		return "", err
	}
	pool, err := pgxpool.New(ctx, buildURL)
	if err != nil {
		return "", err
	}
	err = migrate.Up(ctx, pool)
	pool.Close()
	if err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s RENAME TO %s",
		pgx.Identifier{building}.Sanitize(), pgx.Identifier{name}.Sanitize())); err != nil {
		return "", err
	}
	return name, nil
}

// schemaHash names the template after everything that shapes the schema: our
// migrations and, with river and where the binary records it, River's
// version.
func schemaHash(river bool) string {
	h := sha256.New()
	fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error { //nolint:errcheck // embedded FS
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(migrations.FS, path)
			fmt.Fprintf(h, "%s\x00%s\x00", path, b)
		}
		return nil
	})
	if info, ok := debug.ReadBuildInfo(); ok && river {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/riverqueue/river" {
				fmt.Fprint(h, dep.Version)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func withDatabase(rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(fmt.Sprintf("testdb: bad server URL: %v", err))
	}
	u.Path = "/" + name
	return u.String()
}

func randomSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
