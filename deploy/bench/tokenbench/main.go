// Command tokenbench measures the token lease service against its own limits.
//
//	tokenbench run   -url http://127.0.0.1:8080[,http://127.0.0.1:8081] -clients 16 -duration 10s -warmup 2s
//	tokenbench floor -addr 127.0.0.1:8090
//	tokenbench suite ...   (what `make bench` runs; see deploy/bench/run.sh)
//
// run: N clients, each on its own keep-alive connection, do assign -> unblock
// (with the lease id) cycles back to back, and report cycles/s, p50/p99 of
// assign and unblock, errors, and double assignments (a token handed to a
// second client while the first still holds it, or an unblock of one's own
// live lease refused with 409; must be 0). With -cpu NAME=PID (repeatable) and
// -pg-pid POSTMASTER it also reports CPU per cycle from /proc/<pid>/stat over
// the measured window. The last line of output is one JSON object.
//
// floor: the bare net/http floor server, answering assign and unblock with
// fixed JSON.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = cmdRun(os.Args[2:])
	case "floor":
		err = cmdFloor(os.Args[2:])
	case "suite":
		err = cmdSuite(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tokenbench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: tokenbench run|floor|suite [flags]  (tokenbench CMD -h for flags)")
	os.Exit(2)
}

type probeFlags []cpuProbe

func (p *probeFlags) String() string { return fmt.Sprint(*p) }

func (p *probeFlags) Set(v string) error {
	name, pidText, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want NAME=PID, got %q", v)
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil {
		return fmt.Errorf("want NAME=PID, got %q", v)
	}
	*p = append(*p, cpuProbe{Name: name, Pid: pid})
	return nil
}

type runOutput struct {
	loadResult
	CPUUsPerCycle map[string]float64 `json:"cpu_us_per_cycle,omitempty"`
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	urls := fs.String("url", "http://127.0.0.1:8080", "target base URL(s), comma-separated (clients are spread over them)")
	clients := fs.Int("clients", 16, "concurrent clients, one keep-alive connection each")
	duration := fs.Duration("duration", 10*time.Second, "measured window")
	warmup := fs.Duration("warmup", 2*time.Second, "load before the measured window")
	hold := fs.Duration("hold", 0, "how long a client holds a token before unblocking it")
	rate := fs.Float64("rate", 0, "pace the clients to this many cycles/s in all (0: flat out)")
	pgPid := fs.Int("pg-pid", 0, "postmaster pid: report the cluster's CPU per cycle")
	prefixes := fs.String("prefix", "", "token route prefixes, comma-separated (client i uses prefix i%n, e.g. /pools/a/tokens); empty: /tokens")
	var probes probeFlags
	fs.Var(&probes, "cpu", "NAME=PID: report this process's CPU per cycle (repeatable)")
	_ = fs.Parse(args)

	targets := strings.Split(*urls, ",")
	for _, t := range targets {
		if err := checkLoopback(t); err != nil {
			return err
		}
	}
	if *pgPid != 0 {
		probes = append(probes, cpuProbe{Name: "postgres", Pid: *pgPid, Postgres: true})
	}
	meter := &cpuMeter{probes: probes}
	res, err := runLoad(loadConfig{
		Targets: targets, Clients: *clients, Duration: *duration, Warmup: *warmup, Hold: *hold, Rate: *rate,
		Window: meter.window, Prefixes: splitNonEmpty(*prefixes),
	})
	if err != nil {
		return err
	}
	if meter.err != nil {
		return meter.err
	}
	out := runOutput{loadResult: res}
	if len(probes) > 0 && res.Cycles > 0 {
		out.CPUUsPerCycle = map[string]float64{}
		for i, p := range probes {
			out.CPUUsPerCycle[p.Name] = meter.delta[i] * 1e6 / float64(res.Cycles)
		}
	}
	fmt.Printf("targets %s, %d clients, %.1fs measured after %s warmup\n", strings.Join(targets, ","), res.Clients, res.Seconds, *warmup)
	fmt.Printf("  cycles/s       %10.0f   (%d cycles)\n", res.CyclesPerSec, res.Cycles)
	fmt.Printf("  assign  p50/p99 %7.2f / %.2f ms\n", res.AssignP50Ms, res.AssignP99Ms)
	fmt.Printf("  unblock p50/p99 %7.2f / %.2f ms\n", res.UnblockP50Ms, res.UnblockP99Ms)
	fmt.Printf("  errors %d (no_free_token %d), double assignments %d\n", res.Errors, res.NoFree, res.DoubleAssignments)
	fmt.Printf("  load generator CPU %.1f us/cycle\n", res.LoadgenCPUUs)
	for name, us := range out.CPUUsPerCycle {
		fmt.Printf("  %s CPU %.1f us/cycle\n", name, us)
	}
	for _, s := range res.ErrorSamples {
		fmt.Printf("  ! %s\n", s)
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
	if res.DoubleAssignments > 0 {
		return fmt.Errorf("%d double assignments", res.DoubleAssignments)
	}
	return nil
}

func cmdFloor(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address (loopback)")
	_ = fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "floor server on %s\n", ln.Addr())
	return serveFloor(ln)
}

// checkLoopback refuses load targets that are not on this machine.
func checkLoopback(target string) error {
	c, err := newHTTPConn(target)
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(c.addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("target %q is not a loopback address; tokenbench only loads this machine", target)
}

// splitNonEmpty splits a comma-separated flag; empty gives none.
func splitNonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
