package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// Settings A/B (`tokenbench suite -ab "auth-off:AUTH=off;NAME:K=V,K=V"`):
// one database with a 10k default pool, a pod with the suite's environment
// (the base) and one pod per variant with the variant's environment on top,
// 16 clients on /tokens, in rounds whose order rotates; it reports each
// variant's median cycles/s and the median of the per-round ratios of base
// to variant (what the base's setting costs or saves), and each pod's CPU
// per cycle (steadier than cycles/s on a shared machine). Used for what
// authentication and request observation cost (issues 11 and 12).

type abVariant struct {
	name string
	env  []string
}

func parseABVariants(v string) ([]abVariant, error) {
	var out []abVariant
	for _, f := range strings.Split(v, ";") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		name, env, ok := strings.Cut(f, ":")
		if !ok || name == "" || env == "" {
			return nil, fmt.Errorf("-ab: want NAME:KEY=VALUE[,KEY=VALUE...], got %q", f)
		}
		out = append(out, abVariant{name: name, env: strings.Split(env, ",")})
	}
	return out, nil
}

func cmdAB(c suiteConfig, variants []abVariant) error {
	s := &suite{cfg: c, ctx: context.Background(), started: time.Now()}
	if err := os.MkdirAll(c.LogDir, 0o755); err != nil {
		return err
	}
	b := &poolsBench{s: s, rounds: max(c.Rounds, 1)}
	dbURL, err := b.createDatabase("tokenlease_bench_ab")
	if err != nil {
		return err
	}
	all := append([]abVariant{{name: "base"}}, variants...)
	pods := make([]*process, len(all))
	for i, v := range all {
		p, err := b.startPod(dbURL, "tokenlease_bench_ab-"+v.name, c.Tokend, v.env)
		if err != nil {
			return err
		}
		defer p.stop()
		pods[i] = p
	}
	if err := s.load(dbURL, pods[0].url, 10000); err != nil {
		return err
	}
	if err := b.vacuum(dbURL); err != nil {
		return err
	}
	logf("== settings A/B, 10k default pool, 16 clients, %d rounds of %s", b.rounds, c.Duration)
	cps := make([][]float64, len(all))
	cpu := make([][]float64, len(all)) // the pod's µs of CPU per cycle
	ratios := make([][]float64, len(all))
	for round := 0; round < b.rounds; round++ {
		got := make([]float64, len(all))
		for k := range all {
			i := (k + round) % len(all)
			meter := &cpuMeter{probes: []cpuProbe{{Name: pods[i].name, Pid: pods[i].cmd.Process.Pid}}}
			res, err := runLoad(loadConfig{Targets: []string{pods[i].url}, Clients: 16, Duration: c.Duration, Warmup: c.Warmup, Window: meter.window})
			if err == nil && (res.Errors > 0 || res.DoubleAssignments > 0) {
				err = fmt.Errorf("%d double assignments, %d errors: %v", res.DoubleAssignments, res.Errors, res.ErrorSamples)
			}
			if err == nil {
				err = meter.err
			}
			if err != nil {
				return fmt.Errorf("%s: %w", all[i].name, err)
			}
			v, us := res.CyclesPerSec, meter.delta[0]*1e6/float64(max(res.Cycles, 1))
			got[i] = v
			cps[i] = append(cps[i], v)
			cpu[i] = append(cpu[i], us)
			logf("   r%d %-12s %7.0f cycles/s, pod %5.1f µs CPU/cycle", round+1, all[i].name, v, us)
		}
		for i := range all {
			ratios[i] = append(ratios[i], got[0]/max(got[i], 1))
		}
	}
	logf("\n| pod | environment | cycles/s (median) | base / this (median of rounds) | per round | pod CPU µs/cycle (median) |\n|---|---|---|---|---|---|")
	for i, v := range all {
		per := make([]string, len(ratios[i]))
		for k, r := range ratios[i] {
			per[k] = fmt.Sprintf("%.2f", r)
		}
		logf("| %s | %s | %.0f | %.3f | %s | %.1f |", v.name, strings.Join(v.env, " "), median(cps[i]), median(ratios[i]), strings.Join(per, " "), median(cpu[i]))
	}
	return nil
}
