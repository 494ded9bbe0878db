package httpapi_test

// The pools migration upgrades a database in place: tokens, leases and audit
// rows made by the previous schema survive it, in pool default.

import (
	"context"
	"database/sql"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for goose
	"github.com/pressly/goose/v3"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/migrate"
	"github.com/tokenlease/tokenlease/migrations"
)

// migratedUpToBefore makes a new database migrated up to the last migration
// before version: the schema a migration under test upgrades. It returns the
// database, a goose provider over it (to migrate on, or back down) and the
// version it stands at.
func migratedUpToBefore(ctx context.Context, t *testing.T, version int64) (dbURL string, sqlDB *sql.DB, provider *goose.Provider, previous int64) {
	t.Helper()
	dbURL = emptyDatabaseURL(t)
	if err := migrate.EnsureDatabase(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	sqlDB, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlDB.Close() })
	provider, err = goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range provider.ListSources() {
		if s.Version < version && s.Version > previous {
			previous = s.Version
		}
	}
	if _, err := provider.UpTo(ctx, previous); err != nil {
		t.Fatalf("migrate up to %d: %v", previous, err)
	}
	return dbURL, sqlDB, provider, previous
}

// poolsMigration is the version of 00010_pools.sql.
const poolsMigration = 10

func TestPoolsMigrationUpgradesInPlace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL, _, _, _ := migratedUpToBefore(ctx, t, poolsMigration)

	// Data as the previous schema's statements left it: a free token, a
	// leased one, a dead one, their counters and audit rows.
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var oldLease int64
	err = conn.QueryRow(ctx, `
		WITH ins AS (
		    INSERT INTO tokens (value, alive_until, lease_id, lease_ttl, lease_expires_at, holder)
		    VALUES ('old-free', now() + interval '1 hour', NULL, NULL, NULL, NULL),
		           ('old-held', now() + interval '1 hour', nextval('lease_id_seq'), interval '1 hour', now() + interval '1 hour', 'old-holder'),
		           ('old-dead', now() - interval '1 minute', NULL, NULL, NULL, NULL)
		    RETURNING id, value, lease_id, holder),
		gen AS (
		    INSERT INTO token_events (kind, token_id, token, pod) SELECT 'generated', id, value, 'old-pod' FROM ins),
		asg AS (
		    INSERT INTO token_events (at, kind, token_id, token, lease_id, holder, pod)
		    SELECT now() + interval '1 millisecond', 'assigned', id, value, lease_id, holder, 'old-pod'
		    FROM ins WHERE lease_id IS NOT NULL),
		cnt AS (
		    UPDATE token_counters SET total = total + 3, assigned = assigned + 1 WHERE slot = 0)
		SELECT lease_id FROM ins WHERE lease_id IS NOT NULL`).Scan(&oldLease)
	if err != nil {
		t.Fatalf("old data: %v", err)
	}

	pod := apptest.NewPodOn(t, dbURL, apptest.WithoutSweeper()) // migrates up
	if got := queryInt(t, pod, `SELECT max(version_id) FROM goose_db_version`); got < poolsMigration {
		t.Fatalf("schema at %d after start-up", got)
	}

	if v := pod.Lookup(t, "old-free"); v.State != "free" {
		t.Fatalf("old-free = %+v", v)
	}
	v := lookupIn(t, pod, "default", "old-held")
	if v.State != "assigned" || v.LeaseID == nil || *v.LeaseID != oldLease || v.Holder == nil || *v.Holder != "old-holder" {
		t.Fatalf("old-held = %+v, want assigned under lease %d to old-holder", v, oldLease)
	}
	wantError(t, pod.Call(t, "GET", apptest.TokenPath("old-dead"), nil), http.StatusNotFound, "not_found")

	// Still fenced: a stale lease id is refused, the live one works.
	wantError(t, pod.Call(t, "POST", "/tokens/unblock", map[string]any{"token": "old-held", "lease_id": oldLease + 1}),
		http.StatusConflict, "lease_mismatch")
	l := pod.Assign(t, nil) // old-free, the only free token
	if l.Token != "old-free" || l.LeaseID <= oldLease {
		t.Fatalf("new lease %d on %q, want one above %d on old-free", l.LeaseID, l.Token, oldLease)
	}
	wantStatus(t, pod.Call(t, "POST", "/tokens/unblock", map[string]any{"token": "old-held", "lease_id": oldLease}), http.StatusOK)

	// The old audit rows are pool default's and answer docs/AUDIT.md's query.
	if n := queryInt(t, pod, `SELECT count(*) FROM token_events WHERE pool_id IS DISTINCT FROM 1`); n != 0 {
		t.Fatalf("%d audit rows outside pool default", n)
	}
	rows, err := pod.App.Pool.Query(ctx, `
		SELECT e.kind, e.version FROM token_events e
		WHERE e.pool_id = (SELECT id FROM pools WHERE name = 'default' AND deleted_at IS NULL)
		  AND e.token = 'old-held' ORDER BY e.at, e.id`)
	if err != nil {
		t.Fatal(err)
	}
	type ev struct {
		Kind    string
		Version *int64
	}
	trail, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ev])
	if err != nil {
		t.Fatal(err)
	}
	if len(trail) != 3 || trail[0].Kind != "generated" || trail[1].Kind != "assigned" || trail[2].Kind != "unblocked" {
		t.Fatalf("audit of old-held = %+v, want generated, assigned, unblocked", trail)
	}
	if trail[2].Version == nil || *trail[2].Version != 2 {
		t.Fatalf("the first change after the migration has version %v, want 2", trail[2].Version)
	}
	if s := pod.Stats(t); s.Total != 3 || s.Assigned != 1 {
		t.Fatalf("default stats after the migration = %+v, want the old counters (3 rows, 1 leased)", s)
	}
}

// counterRowsMigration is the version of 00030_counter_rows_per_backend.sql.
const counterRowsMigration = 30

// The counter rows migration keeps the counts of the fixed slots; writes
// then count on their backend's row, and migrating down folds those rows
// back into slot 0 without losing a count.
func TestCounterRowsMigrationUpgradesInPlace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL, sqlDB, provider, previous := migratedUpToBefore(ctx, t, counterRowsMigration)
	// Three tokens, one leased, counted on two of the old random slots.
	if _, err := sqlDB.ExecContext(ctx, `
		WITH ins AS (
		    INSERT INTO tokens (pool_id, value, alive_until, lease_id, lease_ttl, lease_expires_at)
		    VALUES (1, 'c-free-1', now() + interval '1 hour', NULL, NULL, NULL),
		           (1, 'c-free-2', now() + interval '1 hour', NULL, NULL, NULL),
		           (1, 'c-held', now() + interval '1 hour', nextval('lease_id_seq'), interval '1 hour', now() + interval '1 hour')
		    RETURNING id),
		a AS (UPDATE token_counters SET total = total + 3 WHERE pool_id = 1 AND slot = 0)
		UPDATE token_counters SET assigned = assigned + 1 WHERE pool_id = 1 AND slot = 7`); err != nil {
		t.Fatalf("old data: %v", err)
	}

	pod := apptest.NewPodOn(t, dbURL, apptest.WithoutSweeper()) // migrates up
	if got := queryInt(t, pod, `SELECT max(version_id) FROM goose_db_version`); got < counterRowsMigration {
		t.Fatalf("schema at %d after start-up", got)
	}
	if s := pod.Stats(t); s.Total != 3 || s.Assigned != 1 {
		t.Fatalf("stats after the migration = %+v, want the old counters (3 rows, 1 leased)", s)
	}
	l := pod.Assign(t, nil)
	if s := pod.Stats(t); s.Total != 3 || s.Assigned != 2 {
		t.Fatalf("stats after an assign = %+v, want 3 rows, 2 leased", s)
	}
	if n := queryInt(t, pod, `SELECT count(*) FROM token_counters WHERE slot < 0`); n < 1 {
		t.Fatal("the assign made no backend counter row")
	}
	if n := queryInt(t, pod, `SELECT sum(assigned) FROM token_counters WHERE slot BETWEEN 0 AND 17`); n != 1 {
		t.Fatalf("the fixed slots count %d leases, want the old 1 (new writes go to backend rows)", n)
	}
	pod.Unblock(t, l)
	pod.Assign(t, nil)

	if _, err := provider.DownTo(ctx, previous); err != nil {
		t.Fatalf("migrate down to %d: %v", previous, err)
	}
	if n := queryInt(t, pod, `SELECT count(*) FROM token_counters WHERE slot < 0`); n != 0 {
		t.Fatalf("%d backend counter rows left after migrating down", n)
	}
	if n := queryInt(t, pod, `SELECT sum(total) * 10 + sum(assigned) FROM token_counters WHERE pool_id = 1`); n != 32 {
		t.Fatalf("counters after migrating down: total*10 + assigned = %d, want 32 (3 rows, 2 leased)", n)
	}
}
