package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on every
// Linux this runs on).
const clockTicks = 100

// procTimes reads a process's CPU from /proc/<pid>/stat: its own user+system
// time, and that of its reaped children.
func procTimes(pid int) (self, children float64, ppid int, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, 0, err
	}
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'. Field 3 (state) is f[0], so field n is f[n-3].
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := bytes.Fields(b[end+1:])
	if len(f) < 15 {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	num := func(n int) float64 {
		v, _ := strconv.ParseInt(string(f[n-3]), 10, 64)
		return float64(v)
	}
	ppid = int(num(4))
	return (num(14) + num(15)) / clockTicks, (num(16) + num(17)) / clockTicks, ppid, nil
}

// processCPU is the CPU seconds a process has used so far.
func processCPU(pid int) (float64, error) {
	self, _, _, err := procTimes(pid)
	return self, err
}

// postgresCPU is the CPU seconds of a whole PostgreSQL cluster: the
// postmaster, its reaped children (backends that have exited), and its live
// children (backends, walwriter, checkpointer, autovacuum...). Differences of
// two readings count exactly the work done in between, as long as the
// cluster serves nothing but the benchmark.
func postgresCPU(postmaster int) (float64, error) {
	self, reaped, _, err := procTimes(postmaster)
	if err != nil {
		return 0, err
	}
	total := self + reaped
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == postmaster {
			continue
		}
		s, _, ppid, err := procTimes(pid)
		if err != nil || ppid != postmaster {
			continue // gone meanwhile, or not ours
		}
		total += s
	}
	return total, nil
}

// selfCPU is this process's CPU seconds so far.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// cpuProbe names a process whose CPU a run reports per cycle.
type cpuProbe struct {
	Name     string
	Pid      int
	Postgres bool // the postmaster: count the whole cluster
}

func (p cpuProbe) read() (float64, error) {
	if p.Postgres {
		return postgresCPU(p.Pid)
	}
	return processCPU(p.Pid)
}

// cpuMeter takes readings of several probes at once.
type cpuMeter struct {
	probes []cpuProbe
	start  []float64
	delta  []float64
	err    error
}

func (m *cpuMeter) open() {
	m.start = m.readAll()
}

func (m *cpuMeter) close() {
	end := m.readAll()
	m.delta = make([]float64, len(end))
	for i := range end {
		m.delta[i] = end[i] - m.start[i]
	}
}

// window opens the measurement window when open is set and closes it
// otherwise: the load generator's Window callback.
func (m *cpuMeter) window(open bool) {
	if open {
		m.open()
	} else {
		m.close()
	}
}

func (m *cpuMeter) readAll() []float64 {
	out := make([]float64, len(m.probes))
	for i, p := range m.probes {
		v, err := p.read()
		if err != nil && m.err == nil {
			m.err = fmt.Errorf("cpu of %s (pid %d): %w", p.Name, p.Pid, err)
		}
		out[i] = v
	}
	return out
}

// sum adds the deltas of the probes whose names satisfy keep.
func (m *cpuMeter) sum(keep func(cpuProbe) bool) float64 {
	var s float64
	for i, p := range m.probes {
		if keep(p) {
			s += m.delta[i]
		}
	}
	return s
}
