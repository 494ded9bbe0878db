package main

import (
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Audit bytes (issue 14): each client cycles assign -> keep-alive (with the
// lease id) -> unblock against one pod, and the bytes the audit relations
// (token_log, the log's table since migration 00031, with every partition,
// its indexes and TOAST, and its name dictionary audit_names; the view
// token_events counts nothing; -audit-tables)
// gain over the measured window are divided by the window's cycles:
//
//   - heap: growth of pg_table_size over the partitions (pg_inherits, all
//     levels), TOAST, free-space and visibility maps included;
//   - indexes: growth of pg_indexes_size over the same partitions;
//   - WAL: the bytes of the WAL records of the window (pg_walinspect's
//     pg_get_wal_records_info) whose block references name one of those
//     relations' files (record_length, full-page images included).
//
// The window's whole WAL (every relation, commits) is reported beside it.

// auditWindowFactor lengthens the audit variant's window over the others':
// relations grow by whole pages and B-tree splits come in lumps, which a few
// seconds' window does not average out (indexes moved between 107 and 511
// bytes per cycle from one 4 s window to the next).
const auditWindowFactor = 3

// auditBytes is the audit variant's figures, per cycle.
type auditBytes struct {
	HeapB      float64 `json:"heap_b"`
	IndexB     float64 `json:"index_b"`
	WALB       float64 `json:"wal_b"`       // records touching the audit relations; -1: not measured
	WALFPIB    float64 `json:"wal_fpi_b"`   // of which full-page images
	WALRecs    float64 `json:"wal_recs"`    // records touching the audit relations
	WALTotalB  float64 `json:"wal_total_b"` // every WAL byte of the window
	WALMethod  string  `json:"wal_method"`
	Partitions int     `json:"partitions"`
}

func (a *auditBytes) total() float64 {
	if a.WALB < 0 {
		return a.HeapB + a.IndexB
	}
	return a.HeapB + a.IndexB + a.WALB
}

// auditTree lists the audit relations and every partition below them
// (pg_inherits, all levels).
const auditTree = `
WITH RECURSIVE tree AS (
    SELECT r AS oid FROM unnest($1::text[]) n, LATERAL to_regclass(n) r WHERE r IS NOT NULL
    UNION
    SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.oid
)`

type auditSnap struct {
	heap, index int64
	lsn         string
	partitions  int
}

func auditSnapshot(s *suite, conn *pgx.Conn) (auditSnap, error) {
	var a auditSnap
	err := conn.QueryRow(s.ctx, auditTree+`
SELECT coalesce(sum(pg_table_size(oid)), 0)::bigint, coalesce(sum(pg_indexes_size(oid)), 0)::bigint,
       pg_current_wal_flush_lsn()::text, count(*)::int
FROM tree`, s.cfg.AuditTables).Scan(&a.heap, &a.index, &a.lsn, &a.partitions)
	return a, err
}

// auditWAL sums the WAL records between two LSNs whose block references name
// a file of the audit relations (tables, indexes, TOAST) of this database.
const auditWAL = auditTree + `,
rels AS (
    SELECT oid FROM tree
    UNION SELECT i.indexrelid FROM pg_index i JOIN tree t ON i.indrelid = t.oid
    UNION SELECT c.reltoastrelid FROM pg_class c JOIN tree t ON c.oid = t.oid WHERE c.reltoastrelid <> 0
    UNION SELECT i.indexrelid FROM pg_index i JOIN pg_class c ON i.indrelid = c.reltoastrelid
          JOIN tree t ON c.oid = t.oid WHERE c.reltoastrelid <> 0
),
db AS (SELECT oid, dattablespace FROM pg_database WHERE datname = current_database()),
files AS (
    SELECT format('%s/%s/%s', CASE WHEN c.reltablespace = 0 THEN db.dattablespace ELSE c.reltablespace END,
                  db.oid, pg_relation_filenode(c.oid)) AS f
    FROM rels r JOIN pg_class c ON c.oid = r.oid, db
    WHERE pg_relation_filenode(c.oid) IS NOT NULL
)
SELECT count(*)::bigint, coalesce(sum(w.record_length), 0)::bigint, coalesce(sum(w.fpi_length), 0)::bigint
FROM pg_get_wal_records_info($2::pg_lsn, $3::pg_lsn) w
WHERE w.block_ref IS NOT NULL AND EXISTS (
    SELECT 1 FROM regexp_matches(w.block_ref, 'rel (\d+/\d+/\d+)', 'g') m WHERE m[1] IN (SELECT f FROM files))`

// measureAudit runs the assign -> keep-alive -> unblock load against pod a
// and attributes the audit relations' bytes to its cycles.
func (s *suite) measureAudit(m measurement, ps *poolSetup) (measurement, error) {
	conn, err := pgx.Connect(s.ctx, ps.dbURL)
	if err != nil {
		return m, err
	}
	defer conn.Close(s.ctx)
	method := "pg_walinspect"
	if _, err := conn.Exec(s.ctx, "CREATE EXTENSION IF NOT EXISTS pg_walinspect"); err != nil {
		method = "not measured (pg_walinspect: " + err.Error() + ")"
	}
	pod := ps.pods["a"]
	meter := &cpuMeter{probes: []cpuProbe{{Name: pod.name, Pid: pod.cmd.Process.Pid}, {Name: "postgres", Pid: s.postmaster, Postgres: true}}}
	var a0, a1 auditSnap
	var snapErr error
	window := func(open bool) {
		meter.window(open)
		snap, err := auditSnapshot(s, conn)
		if err != nil && snapErr == nil {
			snapErr = err
		}
		if open {
			a0 = snap
		} else {
			a1 = snap
		}
	}
	res, err := runLoad(loadConfig{
		Targets: []string{pod.url}, Clients: m.Clients, Duration: auditWindowFactor * s.cfg.Duration, Warmup: s.cfg.Warmup,
		KeepAliveEvery: 1, Window: window,
	})
	if err != nil {
		return m, err
	}
	if err := firstErr(meter.err, snapErr); err != nil {
		return m, err
	}
	m.CyclesPerSec, m.Cycles, m.KeepAlives = res.CyclesPerSec, res.Cycles, res.KeepAlives
	m.AssignP50, m.AssignP99, m.UnblockP50, m.UnblockP99 = res.AssignP50Ms, res.AssignP99Ms, res.UnblockP50Ms, res.UnblockP99Ms
	m.Errors, m.Doubles, m.LoadgenCPUUs = res.Errors, res.DoubleAssignments, res.LoadgenCPUUs
	for _, e := range res.ErrorSamples {
		logf("   ! %s", e)
	}
	if res.Cycles == 0 {
		return m, fmt.Errorf("no cycles in the window")
	}
	n := float64(res.Cycles)
	m.ProcCPUUs = meter.delta[0] * 1e6 / n
	m.PGCPUUs = meter.delta[1] * 1e6 / n
	ab := &auditBytes{
		HeapB: float64(a1.heap-a0.heap) / n, IndexB: float64(a1.index-a0.index) / n,
		WALB: -1, WALMethod: method, Partitions: a1.partitions,
	}
	var walTotal int64
	if err := conn.QueryRow(s.ctx, "SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::bigint", a1.lsn, a0.lsn).Scan(&walTotal); err != nil {
		return m, err
	}
	ab.WALTotalB = float64(walTotal) / n
	if method == "pg_walinspect" {
		var recs, bytes, fpi int64
		if err := conn.QueryRow(s.ctx, auditWAL, s.cfg.AuditTables, a0.lsn, a1.lsn).Scan(&recs, &bytes, &fpi); err != nil {
			ab.WALMethod = "not measured (pg_get_wal_records_info: " + err.Error() + ")"
		} else {
			ab.WALB, ab.WALFPIB, ab.WALRecs = float64(bytes)/n, float64(fpi)/n, float64(recs)/n
		}
	}
	m.Audit = ab
	return m, nil
}
