package tokens

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrUpkeepBusy: audit partition upkeep gave up waiting for a lock (an open
// reader of token_log, say) and left that step for a later run.
var ErrUpkeepBusy = errors.New("audit partition upkeep: a lock is held elsewhere; will retry")

// upkeepLockTimeout bounds how long a DDL statement of the upkeep waits for a
// lock. Every hot statement writes token_log, and while a DDL statement
// waits for a lock on it, every later statement that needs the table queues
// behind the DDL: the hot path stalls for at most this long per attempt.
const upkeepLockTimeout = "100ms"

// defaultRetentionBatch is how many aged rows of the default partition one
// statement deletes.
const defaultRetentionBatch = 5000

// defaultRetentionMaxBatches bounds one upkeep run's deletions from the
// default partition; the next run goes on.
const defaultRetentionMaxBatches = 200

var dailyPartition = regexp.MustCompile(`^token_log_([0-9]{8})$`)

// partitionDay is the day a daily partition's name holds; false for any
// other name.
func partitionDay(name string) (time.Time, bool) {
	m := dailyPartition.FindStringSubmatch(name)
	if m == nil {
		return time.Time{}, false
	}
	day, err := time.Parse("20060102", m[1])
	return day, err == nil
}

// EventUpkeep is what one run of MaintainEventPartitions did.
type EventUpkeep struct {
	Created, Dropped int
	Indexed          int   // closed partitions given their per-token index
	DefaultDeleted   int64 // aged rows deleted from the default partition
}

// MaintainEventPartitions creates the daily audit partitions from today
// through daysAhead days ahead, drops those whose whole day lies before
// retention, and deletes aged rows from the default partition.
//
// No step may stall the hot path: each DDL statement runs in its own short
// transaction under lock_timeout, a new partition is created as a table of its
// own and then attached (SHARE UPDATE EXCLUSIVE on token_log, which writes
// do not conflict with), and an old partition is detached, then dropped.
// DETACH ... CONCURRENTLY is refused while the table has a default partition,
// so the detach takes its ACCESS EXCLUSIVE lock for an instant, or gives up
// after upkeepLockTimeout. A step that gives up is left for the next run: the
// result then wraps ErrUpkeepBusy, after every other step was tried.
func (s *Service) MaintainEventPartitions(ctx context.Context, daysAhead int, retention time.Duration) (EventUpkeep, error) {
	var up EventUpkeep
	var today, now time.Time
	if err := s.conns.QueryRow(ctx, "SELECT (now() AT TIME ZONE 'UTC')::date::timestamp, now()").Scan(&today, &now); err != nil {
		return up, storageError("audit upkeep", err)
	}
	parts, orphans, err := s.eventPartitions(ctx)
	if err != nil {
		return up, err
	}
	busy := false
	note := func(step string, err error) error {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
			busy = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("tokens: audit upkeep: %s: %w", step, err)
		}
		return nil
	}

	for i := 0; i <= daysAhead; i++ {
		day := today.AddDate(0, 0, i)
		name := "token_log_" + day.Format("20060102")
		if parts[name] {
			continue
		}
		ok, err := s.createEventPartition(ctx, name, day)
		if err := note("create "+name, err); err != nil {
			return up, err
		}
		if ok {
			up.Created++
		}
	}

	cutoff := now.Add(-retention)
	for name := range parts {
		day, ok := partitionDay(name)
		if !ok || day.AddDate(0, 0, 1).After(cutoff) {
			continue
		}
		err := s.ddlTx(ctx, "ALTER TABLE token_log DETACH PARTITION "+pgx.Identifier{name}.Sanitize())
		if err := note("detach "+name, err); err != nil {
			return up, err
		}
		if err == nil {
			orphans = append(orphans, name)
		}
	}
	// Detached partitions (of this run, or of one whose drop gave up) are
	// tables of their own now: dropping one locks nothing the hot path uses.
	for _, name := range orphans {
		err := s.ddlTx(ctx, "DROP TABLE "+pgx.Identifier{name}.Sanitize())
		if err := note("drop "+name, err); err != nil {
			return up, err
		}
		if err == nil {
			up.Dropped++
		}
	}

	// The per-token index (token_id, at) of each partition whose day is
	// over: built once, in one sorted pass, instead of an insert into a
	// random page of it for every row of the day (migration 00031).
	for name := range parts {
		day, ok := partitionDay(name)
		if !ok || !day.Before(today) || !day.AddDate(0, 0, 1).After(cutoff) {
			continue
		}
		built, err := s.indexClosedPartition(ctx, name)
		if err := note("index "+name, err); err != nil {
			return up, err
		}
		if built {
			up.Indexed++
		}
	}

	up.DefaultDeleted, err = s.trimDefaultPartition(ctx, cutoff)
	if err := note("trim the default partition", err); err != nil {
		return up, err
	}
	if busy {
		return up, ErrUpkeepBusy
	}
	return up, nil
}

// eventPartitions lists token_log's attached partitions, and the tables
// named like daily partitions that are not attached (detached ones whose drop
// is still due).
func (s *Service) eventPartitions(ctx context.Context) (attached map[string]bool, detached []string, err error) {
	rows, err := s.conns.Query(ctx, `
SELECT c.relname, EXISTS (SELECT 1 FROM pg_inherits i
                          WHERE i.inhrelid = c.oid AND i.inhparent = 'token_log'::regclass)
FROM pg_class c
WHERE c.relnamespace = (SELECT p.relnamespace FROM pg_class p WHERE p.oid = 'token_log'::regclass)
  AND c.relname ~ '^token_log_' AND c.relkind = 'r'`)
	if err != nil {
		return nil, nil, storageError("audit upkeep: list partitions", err)
	}
	defer rows.Close()
	attached = map[string]bool{}
	for rows.Next() {
		var name string
		var isPart bool
		if err := rows.Scan(&name, &isPart); err != nil {
			return nil, nil, err
		}
		switch {
		case isPart:
			attached[name] = true
		case dailyPartition.MatchString(name):
			detached = append(detached, name)
		}
	}
	return attached, detached, rows.Err()
}

// createEventPartition creates the partition of one UTC day as a table of its
// own and attaches it, in one transaction. It reports false, without error,
// when the default partition already holds rows of that day: they stay
// there, the day has no partition of its own, and retention deletes them.
func (s *Service) createEventPartition(ctx context.Context, name string, day time.Time) (bool, error) {
	ident := pgx.Identifier{name}.Sanitize()
	err := s.ddlTx(ctx,
		"CREATE TABLE IF NOT EXISTS "+ident+" (LIKE token_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
		fmt.Sprintf("ALTER TABLE token_log ATTACH PARTITION %s FOR VALUES FROM ('%s') TO ('%s')",
			ident, day.Format("2006-01-02")+" 00:00:00+00", day.AddDate(0, 0, 1).Format("2006-01-02")+" 00:00:00+00"))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23514" { // check_violation
		slog.Warn("audit partition not created: the default partition holds rows of its day", "partition", name)
		return false, nil
	}
	return err == nil, err
}

// indexClosedPartition builds the per-token index of a partition whose day
// is over, unless it has it. CREATE INDEX CONCURRENTLY takes no lock that
// writes or readers wait for; it waits for transactions older than its
// start, under the upkeep's lock timeout. A build that failed leaves an
// invalid index, which is dropped and built again.
func (s *Service) indexClosedPartition(ctx context.Context, name string) (bool, error) {
	index := name + "_token_id_at"
	var valid *bool
	err := s.conns.QueryRow(ctx, `
SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE c.relname = $1 AND c.relnamespace = (SELECT p.relnamespace FROM pg_class p WHERE p.oid = 'token_log'::regclass)`,
		index).Scan(&valid)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, err
	}
	if valid != nil && *valid {
		return false, nil
	}
	conn, err := s.conns.Acquire(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET lock_timeout = '"+upkeepLockTimeout+"'"); err != nil {
		return false, err
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "RESET lock_timeout"); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) //nolint:errcheck // the pool drops a closed connection
		}
	}()
	ident := pgx.Identifier{index}.Sanitize()
	if valid != nil { // an invalid leftover of a failed build
		if _, err := conn.Exec(ctx, "DROP INDEX CONCURRENTLY IF EXISTS "+ident); err != nil {
			return false, err
		}
	}
	_, err = conn.Exec(ctx, "CREATE INDEX CONCURRENTLY IF NOT EXISTS "+ident+" ON "+pgx.Identifier{name}.Sanitize()+" (token_id, at)")
	return err == nil, err
}

// ddlTx runs DDL statements in one transaction of their own under the
// upkeep's lock timeout.
func (s *Service) ddlTx(ctx context.Context, stmts ...string) error {
	return pgx.BeginFunc(ctx, s.conns, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+upkeepLockTimeout+"'"); err != nil {
			return err
		}
		for _, stmt := range stmts {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
}

// trimDefaultPartition deletes the default partition's rows older than
// cutoff, in bounded batches of their own statements.
func (s *Service) trimDefaultPartition(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for range defaultRetentionMaxBatches {
		tag, err := s.conns.Exec(ctx, `
DELETE FROM token_log_default
WHERE ctid = ANY (ARRAY(SELECT ctid FROM token_log_default WHERE at < $1 LIMIT $2))`,
			cutoff, defaultRetentionBatch)
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < defaultRetentionBatch {
			break
		}
	}
	return total, nil
}
