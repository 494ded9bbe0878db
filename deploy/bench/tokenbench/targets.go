package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The issue-14 targets: every figure a ratio against the lean ceiling of the
// same round (or, for pods and pool sizes, against the service itself), the
// medians over the rounds of one run.

// auditBaseline is the audit bytes per assign + keep-alive + unblock cycle
// of the build issue 14 started from (main at 48cf6e1, 10k pool, 16
// clients, one pod, batching on), measured by this suite's audit variant;
// the target is a third of it. See docs/BENCHMARKS.md ("Audit bytes").
// Medians of 5 rounds of 12 s (2026-12-01; totals 1750-1959 B/cycle).
var auditBaseline = auditBytes{HeapB: 472, IndexB: 321, WALB: 1148, WALRecs: 9.0, WALTotalB: 2924}

const auditBaselineWhen = "main 48cf6e1, 2026-12-01"

// clientRatio is the median over rounds of f at clients a / f at clients b,
// same pool and variant, both measured in the same round.
func (s *summary) clientRatio(pool, a, b int, variant string, f func(measurement) float64) (float64, bool) {
	v := roundRatios(s.get(pool, a, variant), s.get(pool, b, variant), f, f)
	if len(v) == 0 {
		return 0, false
	}
	return median(v), true
}

func auditTotal(m measurement) float64 {
	if m.Audit == nil {
		return 0
	}
	return m.Audit.total()
}

// targetRow writes one row of the targets table; measured is "–" when the
// run has no figure for it.
func targetRow(b *bytes.Buffer, figure, today, target string, v float64, ok bool, met func(float64) bool) {
	measured, holds := "not measured in this run", "–"
	if ok {
		measured = fmt.Sprintf("%.2f", v)
		if met != nil {
			holds = yesNo(met(v))
		}
	}
	fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", figure, today, target, measured, holds)
}

func (s *suite) targetsTable(b *bytes.Buffer, sum *summary) {
	first := s.cfg.Pools[0]
	last := s.cfg.Pools[len(s.cfg.Pools)-1]
	lo, hi := s.cfg.Clients[0], s.cfg.Clients[len(s.cfg.Clients)-1]
	at := fmt.Sprintf("c%d, %s tokens", lo, poolLabel(first))
	b.WriteString("\n### Targets (issue 14): against the lean ceiling, measured side by side in this run\n\n")
	fmt.Fprintf(b, "Lean ceiling = `deploy/bench/lean/cycle_audit.sql` under pgbench (-M prepared) on its own database with the same number of tokens, measured in every round beside the service; each ratio is taken within a round, then the median over rounds.\n\n")
	b.WriteString("| figure | issue's \"today\" | target | measured (this run) | met? |\n|---|---|---|---|---|\n")
	le := func(x float64) func(float64) bool { return func(v float64) bool { return v <= x } }
	ge := func(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }

	r, ok := sum.ratio(first, lo, vSvc, vLean, cps, cps)
	targetRow(b, "service cycles/s / lean ceiling, "+at, "0.68", ">= 1.0", r, ok, ge(1.0))
	r, ok = sum.ratio(first, lo, vSvc, vLean, pgCPU, pgCPU)
	targetRow(b, "PostgreSQL CPU per service cycle / lean ceiling's, "+at, "0.65", "<= 0.5", r, ok, le(0.5))
	r, ok = sum.ratio(first, lo, vNoBatch, vLean, pgCPU, pgCPU)
	targetRow(b, "batching off: PostgreSQL CPU per cycle / lean ceiling's, "+at, "~2.5", "<= 1.3", r, ok, le(1.3))
	if hi != lo {
		cl := fmt.Sprintf("c%d / c%d cycles/s, %s tokens", hi, lo, poolLabel(first))
		r, ok = sum.clientRatio(first, hi, lo, vRef, cps)
		targetRow(b, "design's own statements under pgbench (`claim_release.sql`), "+cl, "0.31", ">= 0.8 (no collapse)", r, ok, ge(0.8))
		r, ok = sum.clientRatio(first, hi, lo, vLean, cps)
		targetRow(b, "(beside it: the lean ceiling, "+cl+")", "0.61 (1,360 / 2,230)", "–", r, ok, nil)
	}
	pc := fmt.Sprintf("c%d split over the pods, %s tokens", hi, poolLabel(first))
	r, ok = sum.ratio(first, hi, vFour, vSvc, cps, cps)
	targetRow(b, "4 pods / 1 pod cycles/s, "+pc, "(2 pods 0.73 at c16)", ">= 0.9", r, ok, ge(0.9))
	r, ok = sum.ratio(first, hi, vTwoPods, vSvc, cps, cps)
	targetRow(b, "(2 pods / 1 pod cycles/s, "+pc+")", "0.73 at c16", "–", r, ok, nil)
	r, ok = sum.ratio(first, hi, vFour, vSvc, pgCPU, pgCPU)
	targetRow(b, "4 pods / 1 pod PostgreSQL CPU per cycle, "+pc, "(2 pods 1.96)", "<= 1.3", r, ok, le(1.3))
	r, ok = sum.ratio(first, hi, vTwoPods, vSvc, pgCPU, pgCPU)
	targetRow(b, "(2 pods / 1 pod PostgreSQL CPU per cycle, "+pc+")", "1.96 at c16", "–", r, ok, nil)
	if last != first {
		r, ok = sum.poolRatio(last, first, lo, vSvc, cps)
		targetRow(b, fmt.Sprintf("%s / %s tokens, service cycles/s, c%d", poolLabel(last), poolLabel(first), lo), "0.91", ">= 0.9", r, ok, ge(0.9))
	}
	s.churnTarget(b)
	s.auditTarget(b, sum, at)
}

// churnTarget reports the churn figure from the latest `make bench-churn`
// (its raw results in the logs directory), which `make bench` does not run.
func (s *suite) churnTarget(b *bytes.Buffer) {
	const figure = "`make bench-churn`, 5 min: cycles/s last 30 s / first 30 s (from the latest `make bench-churn`, not this run: see \"Churn\")"
	const today = "0.78 here (1,558 / 1,997; tokens 21 -> 30 MB)"
	const target = ">= 0.95, tables flat after minute 1"
	path := filepath.Join(s.cfg.LogDir, "churn.jsonl")
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(b, "| %s | %s | %s | no churn run found (%s) | – |\n", figure, today, target, path)
		return
	}
	defer f.Close()
	var long *churnResult
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var r churnResult
		if json.Unmarshal(sc.Bytes(), &r) == nil && strings.HasPrefix(r.Variant, "long run") && len(r.Samples) > 0 {
			long = &r
			break
		}
	}
	if long == nil {
		fmt.Fprintf(b, "| %s | %s | %s | no long churn run in %s | – |\n", figure, today, target, path)
		return
	}
	when := ""
	if st, err := f.Stat(); err == nil {
		when = ", run of " + st.ModTime().UTC().Format("2006-01-02 15:04 MST")
	}
	ratio := long.LastCPS / max(long.FirstCPS, 1)
	// Flat: tokens (heap + indexes) grows by less than 10 % from the sample
	// nearest 60 s to the end.
	var m1 relSizes
	for _, p := range long.Samples {
		m1 = p
		if p.At >= 55 {
			break
		}
	}
	end := long.Samples[len(long.Samples)-1]
	growth := float64(end.TokensTotal)/float64(max(m1.TokensTotal, 1)) - 1
	fmt.Fprintf(b, "| %s | %s | %s | %.2f (%.0f / %.0f); tokens %s at %.0f s -> %s at %.0f s (%+.0f %%)%s | %s |\n",
		figure, today, target, ratio, long.LastCPS, long.FirstCPS, mb(m1.TokensTotal), m1.At, mb(end.TokensTotal), end.At, growth*100, when,
		yesNo(ratio >= 0.95 && growth < 0.10))
}

func (s *suite) auditTarget(b *bytes.Buffer, sum *summary, at string) {
	figure := "audit bytes written per assign + keep-alive + unblock cycle (token_events: heap + indexes + WAL), " + at
	today := "~2 MB/s at full load (~170 GB/day)"
	target := "<= 1/3 of today"
	if base := auditBaseline.total(); base > 0 {
		today += fmt.Sprintf("; %.0f B/cycle (%s)", base, auditBaselineWhen)
		target = fmt.Sprintf("<= %.0f B/cycle (1/3 of %.0f)", base/3, base)
	}
	v, ok := sum.med(s.cfg.Pools[0], s.cfg.Clients[0], vAudit, auditTotal)
	if !ok {
		fmt.Fprintf(b, "| %s | %s | %s | not measured in this run | – |\n", figure, today, target)
		return
	}
	holds := "–"
	if base := auditBaseline.total(); base > 0 {
		holds = yesNo(v <= base/3)
	}
	fmt.Fprintf(b, "| %s | %s | %s | %.0f B/cycle (split below) | %s |\n", figure, today, target, v, holds)
}

// leanPodsAuditTables writes the tables behind the targets: pods side by
// side, and the audit bytes' split.
func (s *suite) podsAuditTables(b *bytes.Buffer, sum *summary) {
	first := s.cfg.Pools[0]
	b.WriteString("\n### Pods (" + poolLabel(first) + " tokens, clients split over the pods, batching on)\n\n")
	b.WriteString("| clients | 1 pod cycles/s | 2 pods | 4 pods | 2 / 1 | 4 / 1 | PG µs/cycle 1 pod | 2 pods | 4 pods | PG 2 / 1 | PG 4 / 1 | pods' own CPU µs/cycle 1 / 2 / 4 | errors | double assignments |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range s.cfg.Clients {
		if len(sum.get(first, c, vFour)) == 0 && len(sum.get(first, c, vTwoPods)) == 0 {
			continue
		}
		one, ok1 := sum.med(first, c, vSvc, cps)
		two, ok2 := sum.med(first, c, vTwoPods, cps)
		four, ok4 := sum.med(first, c, vFour, cps)
		r2, okr2 := sum.ratio(first, c, vTwoPods, vSvc, cps, cps)
		r4, okr4 := sum.ratio(first, c, vFour, vSvc, cps, cps)
		p1, okp1 := sum.med(first, c, vSvc, pgCPU)
		p2, okp2 := sum.med(first, c, vTwoPods, pgCPU)
		p4, okp4 := sum.med(first, c, vFour, pgCPU)
		q2, okq2 := sum.ratio(first, c, vTwoPods, vSvc, pgCPU, pgCPU)
		q4, okq4 := sum.ratio(first, c, vFour, vSvc, pgCPU, pgCPU)
		s1, oks1 := sum.med(first, c, vSvc, procCPU)
		s2, oks2 := sum.med(first, c, vTwoPods, procCPU)
		s4, oks4 := sum.med(first, c, vFour, procCPU)
		var errs, doubles int64
		for _, v := range []string{vTwoPods, vFour} {
			for _, m := range sum.get(first, c, v) {
				errs += m.Errors
				doubles += m.Doubles
			}
		}
		fmt.Fprintf(b, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s | %d | %d |\n", c,
			fmtNum(one, ok1, "%.0f"), fmtNum(two, ok2, "%.0f"), fmtNum(four, ok4, "%.0f"), fmtNum(r2, okr2, "%.2f"), fmtNum(r4, okr4, "%.2f"),
			fmtNum(p1, okp1, "%.0f"), fmtNum(p2, okp2, "%.0f"), fmtNum(p4, okp4, "%.0f"), fmtNum(q2, okq2, "%.2f"), fmtNum(q4, okq4, "%.2f"),
			fmtNum(s1, oks1, "%.0f"), fmtNum(s2, oks2, "%.0f"), fmtNum(s4, oks4, "%.0f"), errs, doubles)
	}

	c := s.cfg.Clients[0]
	ms := sum.get(first, c, vAudit)
	if len(ms) == 0 {
		return
	}
	fmt.Fprintf(b, "\n### Audit bytes per assign + keep-alive + unblock cycle (%s tokens, %d clients, 1 pod, batching on)\n\n", poolLabel(first), c)
	fmt.Fprintf(b, "Relations: %s with every partition (pg_inherits), their indexes and TOAST. Heap = growth of pg_table_size, indexes = growth of pg_indexes_size over the window; WAL = record_length (full-page images included) of the window's WAL records whose block references name one of those relations' files (pg_walinspect). Whole WAL = every WAL byte of the window (all relations, commits), for scale. Medians over rounds, bytes per cycle.\n\n",
		"`"+strings.Join(s.cfg.AuditTables, "`, `")+"`")
	b.WriteString("| | cycles/s | keep-alives per cycle | heap | indexes | WAL | of which full-page images | WAL records | total (heap + indexes + WAL) | whole WAL of the window | audit total at this rate | WAL method |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	f := func(g func(a *auditBytes) float64) float64 {
		v, _ := sum.med(first, c, vAudit, func(m measurement) float64 {
			if m.Audit == nil {
				return 0
			}
			return g(m.Audit)
		})
		return v
	}
	rate, _ := sum.med(first, c, vAudit, cps)
	kpc, _ := sum.med(first, c, vAudit, func(m measurement) float64 { return float64(m.KeepAlives) / float64(max(m.Cycles, 1)) })
	total := f((*auditBytes).total)
	wal := fmt.Sprintf("%.0f", f(func(a *auditBytes) float64 { return a.WALB }))
	if ms[len(ms)-1].Audit != nil && ms[len(ms)-1].Audit.WALB < 0 {
		wal = "–"
	}
	method := ""
	if ms[len(ms)-1].Audit != nil {
		method = ms[len(ms)-1].Audit.WALMethod
	}
	fmt.Fprintf(b, "| this run | %.0f | %.2f | %.0f | %.0f | %s | %.0f | %.1f | %.0f | %.0f | %.2f MB/s | %s |\n",
		rate, kpc, f(func(a *auditBytes) float64 { return a.HeapB }), f(func(a *auditBytes) float64 { return a.IndexB }), wal,
		f(func(a *auditBytes) float64 { return a.WALFPIB }), f(func(a *auditBytes) float64 { return a.WALRecs }), total,
		f(func(a *auditBytes) float64 { return a.WALTotalB }), total*rate/1e6, method)
	if base := auditBaseline.total(); base > 0 {
		fmt.Fprintf(b, "| baseline (%s) | – | 1.00 | %.0f | %.0f | %.0f | %.0f | %.1f | %.0f | %.0f | – | pg_walinspect |\n",
			auditBaselineWhen, auditBaseline.HeapB, auditBaseline.IndexB, auditBaseline.WALB, auditBaseline.WALFPIB, auditBaseline.WALRecs, base, auditBaseline.WALTotalB)
	}
}
