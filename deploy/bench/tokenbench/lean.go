package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The lean ceiling (issue 14): deploy/bench/lean/setup.sql and
// cycle_audit.sql, the least SQL that does the assign + unblock cycle
// correctly with its audit rows, run by pgbench on a database of its own
// with as many tokens as the pool it stands beside. Every issue-14 target is
// a ratio against it, measured in the same round.

func leanDBName(pool int) string {
	return "tokenlease_bench_lean_" + strings.ToLower(poolLabel(pool))
}

// psqlVar is a psql variable reference (:n), not a cast (::int).
var psqlVar = regexp.MustCompile(`(^|[^:]):n\b`)

// leanSetupSQL reads setup.sql with psql's :n replaced by the pool size, and
// splits off its VACUUM statements, which cannot run inside the implicit
// transaction of a multi-statement query.
func leanSetupSQL(path string, pool int) (script string, vacuums []string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	var keep []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(line)), "vacuum") {
			vacuums = append(vacuums, strings.TrimSuffix(strings.TrimSpace(line), ";"))
			continue
		}
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			line = psqlVar.ReplaceAllString(line, "${1}"+strconv.Itoa(pool))
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n"), vacuums, nil
}

// setupLean creates the pool's lean database and loads it with the same
// number of tokens.
func (s *suite) setupLean(ps *poolSetup) error {
	ps.leanName = leanDBName(ps.pool)
	ps.leanURL = s.dbURL(ps.leanName)
	script, vacuums, err := leanSetupSQL(filepath.Join(s.cfg.ScriptDir, "lean", "setup.sql"), ps.pool)
	if err != nil {
		return err
	}
	admin, err := pgx.Connect(s.ctx, s.cfg.AdminURL)
	if err != nil {
		return err
	}
	_, err = admin.Exec(s.ctx, "CREATE DATABASE "+pgx.Identifier{ps.leanName}.Sanitize())
	admin.Close(s.ctx)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(s.ctx, ps.leanURL)
	if err != nil {
		return err
	}
	defer conn.Close(s.ctx)
	t0 := time.Now()
	// Without arguments pgx sends the script in one simple-protocol query.
	if _, err := conn.Exec(s.ctx, script); err != nil {
		return fmt.Errorf("lean setup.sql: %w", err)
	}
	for _, v := range vacuums {
		if _, err := conn.Exec(s.ctx, v); err != nil {
			return fmt.Errorf("lean setup.sql: %s: %w", v, err)
		}
	}
	logf("   lean ceiling: database %s, %d tokens loaded in %.1fs", ps.leanName, ps.pool, time.Since(t0).Seconds())
	return nil
}
