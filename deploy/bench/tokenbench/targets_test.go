package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every row of the issue-14 targets table gets a figure from a run that
// measured every variant the suite plans, and the churn row comes from the
// latest churn run's raw results.
func TestTargetsTableRows(t *testing.T) {
	t.Parallel()
	logs := t.TempDir()
	s := &suite{cfg: suiteConfig{Pools: []int{10000, 1000000}, Clients: []int{16, 64}, Rounds: 2, Quick: true,
		AuditTables: []string{"token_events"}, LogDir: logs}}
	churn := churnResult{Variant: "long run (shipped)", FirstCPS: 2000, LastCPS: 1960, Samples: []relSizes{
		{At: 0, TokensTotal: 20 << 20}, {At: 60, TokensTotal: 40 << 20}, {At: 300, TokensTotal: 42 << 20}}}
	line, _ := json.Marshal(churn)
	if err := os.WriteFile(filepath.Join(logs, "churn.jsonl"), append(line, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := &summary{byKey: map[key][]measurement{}}
	for r := 1; r <= 2; r++ {
		for _, pool := range s.cfg.Pools {
			for _, c := range s.cfg.Clients {
				for _, v := range s.variantsFor(pool, c) {
					m := measurement{Pool: pool, Clients: c, Variant: v, Round: r, Cycles: 1000,
						CyclesPerSec: 1000 + float64(r), PGCPUUs: 300, ProcCPUUs: 100, KeepAlives: 1000}
					if v == vAudit {
						m.Audit = &auditBytes{HeapB: 100, IndexB: 50, WALB: 300, WALMethod: "pg_walinspect"}
					}
					k := key{pool, c, v}
					sum.byKey[k] = append(sum.byKey[k], m)
				}
			}
		}
	}
	var b bytes.Buffer
	s.targetsTable(&b, sum)
	s.podsAuditTables(&b, sum)
	out := b.String()
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "not measured") || strings.Contains(l, "no churn run") {
			t.Errorf("row without a figure: %s", l)
		}
	}
	for _, want := range []string{
		"| service cycles/s / lean ceiling, c16, 10k tokens | 0.68 | >= 1.0 | 1.00 | yes |",
		"| 4 pods / 1 pod cycles/s, c64 split over the pods, 10k tokens | (2 pods 0.73 at c16) | >= 0.9 | 1.00 | yes |",
		"| 1M / 10k tokens, service cycles/s, c16 | 0.91 | >= 0.9 | 1.00 | yes |",
		"0.98 (1960 / 2000); tokens 40.0 MB at 60 s -> 42.0 MB at 300 s (+5 %)",
		"| 450 B/cycle (split below) | yes |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}
