package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

const (
	markerBegin = "<!-- bench:begin (written by make bench; edits inside are overwritten) -->"
	markerEnd   = "<!-- bench:end -->"
)

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

type key struct {
	pool, clients int
	variant       string
}

type summary struct {
	byKey map[key][]measurement
}

func (s *summary) get(pool, clients int, variant string) []measurement {
	return s.byKey[key{pool, clients, variant}]
}

// med is the median of f over the rounds of one configuration.
func (s *summary) med(pool, clients int, variant string, f func(measurement) float64) (float64, bool) {
	ms := s.get(pool, clients, variant)
	if len(ms) == 0 {
		return 0, false
	}
	v := make([]float64, len(ms))
	for i, m := range ms {
		v[i] = f(m)
	}
	return median(v), true
}

// ratio is the median over rounds of f(a)/f(b), a and b measured in the same
// round (side by side); without matching rounds, the ratio of the medians.
func (s *summary) ratio(pool, clients int, a, b string, fa, fb func(measurement) float64) (float64, bool) {
	ra, rb := s.get(pool, clients, a), s.get(pool, clients, b)
	if len(ra) == 0 || len(rb) == 0 {
		return 0, false
	}
	v := roundRatios(ra, rb, fa, fb)
	if len(v) == 0 {
		ma, _ := s.med(pool, clients, a, fa)
		mb, _ := s.med(pool, clients, b, fb)
		if mb == 0 {
			return 0, false
		}
		return ma / mb, true
	}
	return median(v), true
}

// roundRatios pairs the measurements of ra and rb taken in the same round
// (side by side) and returns fa(x)/fb(y) for each pair.
func roundRatios(ra, rb []measurement, fa, fb func(measurement) float64) []float64 {
	var v []float64
	for _, x := range ra {
		for _, y := range rb {
			if x.Round == y.Round && fb(y) != 0 {
				v = append(v, fa(x)/fb(y))
			}
		}
	}
	return v
}

// poolRatio is the median over rounds of f at pool a / f at pool b, same
// clients and variant, each round's pools measured one after the other.
func (s *summary) poolRatio(a, b, clients int, variant string, f func(measurement) float64) (float64, bool) {
	v := roundRatios(s.get(a, clients, variant), s.get(b, clients, variant), f, f)
	if len(v) == 0 {
		return 0, false
	}
	return median(v), true
}

func cps(m measurement) float64     { return m.CyclesPerSec }
func pgCPU(m measurement) float64   { return m.PGCPUUs }
func procCPU(m measurement) float64 { return m.ProcCPUUs }

func fmtNum(v float64, ok bool, format string) string {
	if !ok {
		return "–"
	}
	return fmt.Sprintf(format, v)
}

func (s *suite) report() error {
	sum := &summary{byKey: map[key][]measurement{}}
	for _, m := range s.results {
		k := key{m.Pool, m.Clients, m.Variant}
		sum.byKey[k] = append(sum.byKey[k], m)
	}
	first := s.cfg.Pools[0]
	var b bytes.Buffer
	mode := "full"
	if s.cfg.Quick {
		mode = "quick (BENCH_QUICK=1)"
	}
	fmt.Fprintf(&b, "Run of %s, %s mode, %d round(s) of %s windows after %s warm-up, %.0f s in all.  \n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), mode, s.cfg.Rounds, s.cfg.Duration, s.cfg.Warmup, time.Since(s.started).Seconds())
	fmt.Fprintf(&b, "Machine: %s.  \n%s, on the same machine as the service and the load generator.  \n", machine(), s.pgInfo)
	if n, err := s.checkpoints(); err == nil {
		fmt.Fprintf(&b, "Checkpoints from the pools' creation to the end of the run: %d.  \n", n-s.checkpoints0)
	}
	fmt.Fprintf(&b, "Every figure is the median over the rounds; each round measures every pool and variant one after the other (the order rotates), ratios are taken within a round and then the median. ")
	fmt.Fprintf(&b, "Lean ceiling = `deploy/bench/lean/cycle_audit.sql` under pgbench (-M prepared) on a database of its own with the same number of tokens: the least SQL that does the cycle with its audit rows. ")
	fmt.Fprintf(&b, "Reference = `deploy/bench/claim_release.sql` (the design's own single-token statements, generated from queries/) under pgbench (-M prepared), audit rows on. ")
	fmt.Fprintf(&b, "Service = 1 pod, batching on; off = 1 pod with BATCHING=off; 2 and 4 pods = clients split over the pods, batching on; audit = 1 pod, each cycle assign -> keep-alive -> unblock. ")
	fmt.Fprintf(&b, "Floor = `tokenbench floor` (bare net/http, fixed JSON), flat out, and paced to the service's cycle rate of the same round.\n\n")

	b.WriteString("### Throughput and latency (assign + unblock cycles)\n\n")
	b.WriteString("| pool | clients | lean ceiling cycles/s | reference cycles/s | service cycles/s | service / lean | service / reference | batching off cycles/s | on / off | 2 pods cycles/s | 4 pods cycles/s | assign p50 / p99 ms | unblock p50 / p99 ms | lean cycle p50 / p99 ms | reference cycle p50 / p99 ms | errors | double assignments |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, pool := range s.cfg.Pools {
		for _, c := range s.cfg.Clients {
			if len(sum.get(pool, c, vSvc)) == 0 && len(sum.get(pool, c, vRef)) == 0 && len(sum.get(pool, c, vLean)) == 0 {
				continue
			}
			ref, okRef := sum.med(pool, c, vRef, cps)
			svc, okSvc := sum.med(pool, c, vSvc, cps)
			r, okR := sum.ratio(pool, c, vSvc, vRef, cps, cps)
			lean, okLean := sum.med(pool, c, vLean, cps)
			rl, okRL := sum.ratio(pool, c, vSvc, vLean, cps, cps)
			four, okFour := sum.med(pool, c, vFour, cps)
			l50, okL50 := sum.med(pool, c, vLean, func(m measurement) float64 { return m.AssignP50 })
			l99, _ := sum.med(pool, c, vLean, func(m measurement) float64 { return m.AssignP99 })
			off, okOff := sum.med(pool, c, vNoBatch, cps)
			onOff, okOnOff := sum.ratio(pool, c, vSvc, vNoBatch, cps, cps)
			two, okTwo := sum.med(pool, c, vTwoPods, cps)
			a50, _ := sum.med(pool, c, vSvc, func(m measurement) float64 { return m.AssignP50 })
			a99, _ := sum.med(pool, c, vSvc, func(m measurement) float64 { return m.AssignP99 })
			u50, _ := sum.med(pool, c, vSvc, func(m measurement) float64 { return m.UnblockP50 })
			u99, _ := sum.med(pool, c, vSvc, func(m measurement) float64 { return m.UnblockP99 })
			r50, okR50 := sum.med(pool, c, vRef, func(m measurement) float64 { return m.AssignP50 })
			r99, _ := sum.med(pool, c, vRef, func(m measurement) float64 { return m.AssignP99 })
			var errs, doubles int64
			for _, v := range []string{vSvc, vNoBatch, vTwoPods, vFour, vAudit} {
				for _, m := range sum.get(pool, c, v) {
					errs += m.Errors
					doubles += m.Doubles
				}
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %d |\n",
				poolLabel(pool), c, fmtNum(lean, okLean, "%.0f"), fmtNum(ref, okRef, "%.0f"), fmtNum(svc, okSvc, "%.0f"), fmtNum(rl, okRL, "%.2f"), fmtNum(r, okR, "%.2f"),
				fmtNum(off, okOff, "%.0f"), fmtNum(onOff, okOnOff, "%.2f"), fmtNum(two, okTwo, "%.0f"), fmtNum(four, okFour, "%.0f"),
				fmtNum2(a50, a99, okSvc), fmtNum2(u50, u99, okSvc), fmtNum2(l50, l99, okL50), fmtNum2(r50, r99, okR50), errs, doubles)
		}
	}

	b.WriteString("\n### CPU per cycle (µs, from /proc/<pid>/stat utime+stime; PostgreSQL = postmaster with reaped and live children)\n\n")
	b.WriteString("| pool | clients | PG: service | PG: lean ceiling | PG service / lean | PG: reference | PG service / reference | PG: batching off | PG off / lean | service process | floor flat out | service / floor | floor at the service's rate | service / that floor | service: batching off | load generator (service run) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, pool := range s.cfg.Pools {
		for _, c := range s.cfg.Clients {
			if len(sum.get(pool, c, vSvc)) == 0 {
				continue
			}
			pgS, okS := sum.med(pool, c, vSvc, pgCPU)
			pgR, okR := sum.med(pool, c, vRef, pgCPU)
			pgRatio, okPR := sum.ratio(pool, c, vSvc, vRef, pgCPU, pgCPU)
			pgOff, okPO := sum.med(pool, c, vNoBatch, pgCPU)
			pgL, okL := sum.med(pool, c, vLean, pgCPU)
			pgSL, okSL := sum.ratio(pool, c, vSvc, vLean, pgCPU, pgCPU)
			pgOL, okOL := sum.ratio(pool, c, vNoBatch, vLean, pgCPU, pgCPU)
			svcCPU, _ := sum.med(pool, c, vSvc, procCPU)
			fl, okF := sum.med(pool, c, vFloor, procCPU)
			fr, okFR := sum.ratio(pool, c, vSvc, vFloor, procCPU, procCPU)
			fa, okFA := sum.med(pool, c, vFloorAt, procCPU)
			far, okFAR := sum.ratio(pool, c, vSvc, vFloorAt, procCPU, procCPU)
			offCPU, okOff := sum.med(pool, c, vNoBatch, procCPU)
			lg, _ := sum.med(pool, c, vSvc, func(m measurement) float64 { return m.LoadgenCPUUs })
			fmt.Fprintf(&b, "| %s | %d | %.0f | %s | %s | %s | %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %.0f |\n",
				poolLabel(pool), c, pgS, fmtNum(pgL, okL, "%.0f"), fmtNum(pgSL, okSL && okS, "%.2f"), fmtNum(pgR, okR, "%.0f"), fmtNum(pgRatio, okPR && okS, "%.2f"), fmtNum(pgOff, okPO, "%.0f"), fmtNum(pgOL, okOL, "%.2f"),
				svcCPU, fmtNum(fl, okF, "%.0f"), fmtNum(fr, okFR, "%.2f"), fmtNum(fa, okFA, "%.0f"), fmtNum(far, okFAR, "%.2f"),
				fmtNum(offCPU, okOff, "%.0f"), lg)
		}
	}

	s.targetsTable(&b, sum)
	s.podsAuditTables(&b, sum)

	b.WriteString("\n### Targets (issue 4), measured side by side in this run\n\n")
	b.WriteString("| figure | target | measured | holds |\n|---|---|---|---|\n")
	last := s.cfg.Pools[len(s.cfg.Pools)-1]
	for _, c := range s.cfg.Clients {
		if len(sum.get(first, c, vSvc)) == 0 {
			continue
		}
		at := fmt.Sprintf("%d clients, %s tokens", c, poolLabel(first))
		if r, ok := sum.ratio(first, c, vSvc, vRef, cps, cps); ok {
			writeTarget(&b, "service / raw one-statement SQL ceiling, "+at, ">= 1.0", r, r >= 1.0)
		}
		if r, ok := sum.ratio(first, c, vSvc, vRef, pgCPU, pgCPU); ok {
			writeTarget(&b, "PostgreSQL CPU per cycle, service / reference, "+at, "<= 1.0", r, r <= 1.0)
		}
		if r, ok := sum.ratio(first, c, vSvc, vFloor, procCPU, procCPU); ok {
			writeTarget(&b, "service process CPU per cycle / bare net/http floor flat out, "+at, "<= 2.0", r, r <= 2.0)
		}
		if r, ok := sum.ratio(first, c, vSvc, vFloorAt, procCPU, procCPU); ok {
			writeTarget(&b, "service process CPU per cycle / the floor paced to the service's rate, "+at, "<= 2.0", r, r <= 2.0)
		}
		if last != first {
			if r, ok := sum.poolRatio(last, first, c, vSvc, cps); ok {
				writeTarget(&b, fmt.Sprintf("%s pool / %s pool, service cycles/s, %d clients", poolLabel(last), poolLabel(first), c), ">= 0.9", r, r >= 0.9)
			}
			// The same question asked of CPU, which other work on the
			// machine disturbs far less than wall-clock throughput: cycles
			// per CPU-second of PostgreSQL plus the service.
			perCPU := func(m measurement) float64 {
				if t := m.PGCPUUs + m.ProcCPUUs; t > 0 {
					return 1e6 / t
				}
				return 0
			}
			if r, ok := sum.poolRatio(last, first, c, vSvc, perCPU); ok {
				writeTarget(&b, fmt.Sprintf("%s pool / %s pool, service cycles per CPU-second (PostgreSQL + service), %d clients", poolLabel(last), poolLabel(first), c), ">= 0.9", r, r >= 0.9)
			}
			if r, ok := sum.poolRatio(last, first, c, vRef, cps); ok {
				fmt.Fprintf(&b, "| (for comparison: the reference, %s / %s, %d clients) | – | %.2f | – |\n", poolLabel(last), poolLabel(first), c, r)
			}
		}
		if c == 16 {
			p99, _ := sum.med(first, c, vSvc, func(m measurement) float64 { return m.AssignP99 })
			fmt.Fprintf(&b, "| assign p99, %s | <= 5 ms | %.2f ms | %s |\n", at, p99, yesNo(p99 <= 5))
		}
	}
	b.WriteString("| service / Node.js + Redis peer, same load generator | >= 2.0 | not measured (no peer in `make bench`) | – |\n")
	s.scenarioTable(&b)
	if s.cfg.Note != "" {
		fmt.Fprintf(&b, "\n%s\n", s.cfg.Note)
	}

	table := b.String()
	fmt.Println()
	fmt.Println(table)
	if s.cfg.Out == "" {
		return nil
	}
	return writeGenerated(s.cfg.Out, table)
}

func fmtNum2(a, b float64, ok bool) string {
	if !ok {
		return "–"
	}
	return fmt.Sprintf("%.2f / %.2f", a, b)
}

func writeTarget(b *bytes.Buffer, figure, target string, v float64, ok bool) {
	fmt.Fprintf(b, "| %s | %s | %.2f | %s |\n", figure, target, v, yesNo(ok))
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// writeGenerated replaces the generated section of path (between the
// markers), keeping the hand-written text around it.
func writeGenerated(path, table string) error {
	return writeSection(path, markerBegin, markerEnd, "## Latest `make bench` run", table)
}

// writeSection replaces the text between begin and end in path, or appends
// the section under heading when the markers are missing.
func writeSection(path, begin, end, heading, table string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	section := begin + "\n" + table + end
	var out string
	text := string(old)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	switch {
	case i >= 0 && j > i:
		out = text[:i] + section + text[j+len(end):]
	case len(old) == 0:
		out = "# Benchmarks\n\n" + heading + "\n\n" + section + "\n"
	default:
		out = strings.TrimRight(text, "\n") + "\n\n" + heading + "\n\n" + section + "\n"
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

// machine describes the host: CPU model, cores, memory, kernel.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				if _, v, ok := strings.Cut(line, ":"); ok {
					model = strings.TrimSpace(v)
				}
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s (%s), %d cores%s%s, %s", host, model, runtime.NumCPU(), mem, kernel, runtime.Version())
}
