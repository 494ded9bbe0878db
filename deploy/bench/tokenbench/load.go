package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// loadConfig describes one load run: Clients connections, each doing
// assign -> unblock (with the lease id) cycles back to back.
type loadConfig struct {
	Targets []string // base URLs; client i speaks to Targets[i%len]
	// Prefixes are the token routes' prefixes; client i uses
	// Prefixes[i%len] (a pool's /pools/{pool}/tokens); none: /tokens.
	Prefixes []string
	Clients  int
	Duration time.Duration // measured window
	Warmup   time.Duration // load before the window, not counted
	Hold     time.Duration // how long a client keeps a token before unblocking
	// Rate, when set, paces the clients to about this many cycles per second
	// in all (each client starts a cycle every Clients/Rate seconds, and
	// never bursts to catch up); 0 runs them flat out.
	Rate float64
	// KeepAliveEvery, when set, makes every n-th cycle of a client renew its
	// lease (POST /tokens/keep-alive with the lease id) before the unblock.
	KeepAliveEvery int
	// Stop, when set and closed, ends the measured window early.
	Stop <-chan struct{}
	// Window, when set, is called as the measured window opens (true) and
	// closes (false), for CPU snapshots that must cover the window exactly.
	Window func(open bool)
}

// loadResult is what a run saw inside its measured window.
type loadResult struct {
	Targets           []string `json:"targets"`
	Clients           int      `json:"clients"`
	Seconds           float64  `json:"seconds"`
	Cycles            int64    `json:"cycles"`
	CyclesPerSec      float64  `json:"cycles_per_s"`
	AssignP50Ms       float64  `json:"assign_p50_ms"`
	AssignP99Ms       float64  `json:"assign_p99_ms"`
	UnblockP50Ms      float64  `json:"unblock_p50_ms"`
	UnblockP99Ms      float64  `json:"unblock_p99_ms"`
	Errors            int64    `json:"errors"`
	NoFree            int64    `json:"no_free_token"`
	KeepAlives        int64    `json:"keep_alives,omitempty"`
	DoubleAssignments int64    `json:"double_assignments"`
	ErrorSamples      []string `json:"error_samples,omitempty"`
	LoadgenCPUUs      float64  `json:"loadgen_cpu_us_per_cycle"`
}

// holdMap knows which client holds which token right now. A token handed out
// while another client still holds it is a double assignment. A client
// forgets its token before it sends the unblock, so a reassignment racing
// with the unblock's response is not mistaken for one.
type holdMap struct {
	seed   maphash.Seed
	shards [64]struct {
		mu sync.Mutex
		m  map[string]int64 // token -> lease id
		_  [40]byte
	}
	doubles atomic.Int64
	samples errorSamples
}

func newHoldMap() *holdMap {
	h := &holdMap{seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].m = make(map[string]int64)
	}
	return h
}

func (h *holdMap) take(token string, lease int64) {
	s := &h.shards[maphash.String(h.seed, token)%uint64(len(h.shards))]
	s.mu.Lock()
	prev, held := s.m[token]
	if !held {
		s.m[token] = lease
	}
	s.mu.Unlock()
	if held {
		h.doubles.Add(1)
		h.samples.add(fmt.Sprintf("double assignment: token %s held under lease %d, assigned again under lease %d", token, prev, lease))
	}
}

func (h *holdMap) drop(token string, lease int64) {
	s := &h.shards[maphash.String(h.seed, token)%uint64(len(h.shards))]
	s.mu.Lock()
	if s.m[token] == lease {
		delete(s.m, token)
	}
	s.mu.Unlock()
}

// errorSamples keeps the first few error descriptions.
type errorSamples struct {
	mu   sync.Mutex
	list []string
}

func (e *errorSamples) add(s string) {
	e.mu.Lock()
	if len(e.list) < 10 {
		e.list = append(e.list, s)
	}
	e.mu.Unlock()
}

func (e *errorSamples) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}

type clientStats struct {
	cycles  int64
	errors  int64
	noFree  int64
	kept    int64
	assign  []int64 // ns
	unblock []int64 // ns
}

// runLoad drives the load and returns the figures of the measured window.
func runLoad(cfg loadConfig) (loadResult, error) {
	if cfg.Clients < 1 || len(cfg.Targets) == 0 {
		return loadResult{}, fmt.Errorf("need at least one client and one target")
	}
	conns := make([]*httpConn, cfg.Clients)
	for i := range conns {
		c, err := newHTTPConn(cfg.Targets[i%len(cfg.Targets)])
		if err != nil {
			return loadResult{}, err
		}
		if err := c.dial(); err != nil {
			return loadResult{}, fmt.Errorf("connect %s: %w", cfg.Targets[i%len(cfg.Targets)], err)
		}
		conns[i] = c
	}
	holds := newHoldMap()
	var measuring, stop atomic.Bool
	stats := make([]*clientStats, cfg.Clients)
	var wg sync.WaitGroup
	for i := range conns {
		st := &clientStats{assign: make([]int64, 0, 1<<14), unblock: make([]int64, 0, 1<<14)}
		stats[i] = st
		wg.Add(1)
		var pace time.Duration
		if cfg.Rate > 0 {
			pace = time.Duration(float64(cfg.Clients) / cfg.Rate * float64(time.Second))
		}
		first := time.Now().Add(pace * time.Duration(i) / time.Duration(cfg.Clients))
		prefix := "/tokens"
		if len(cfg.Prefixes) > 0 {
			prefix = cfg.Prefixes[i%len(cfg.Prefixes)]
		}
		go func(c *httpConn) {
			defer wg.Done()
			defer c.close()
			runClient(c, st, holds, prefix, cfg.Hold, cfg.KeepAliveEvery, pace, first, &measuring, &stop)
		}(conns[i])
	}

	time.Sleep(cfg.Warmup)
	cpu0 := selfCPU()
	if cfg.Window != nil {
		cfg.Window(true)
	}
	measuring.Store(true)
	start := time.Now()
	select {
	case <-time.After(cfg.Duration):
	case <-cfg.Stop:
	}
	measuring.Store(false)
	elapsed := time.Since(start)
	if cfg.Window != nil {
		cfg.Window(false)
	}
	cpu1 := selfCPU()
	stop.Store(true)
	wg.Wait()

	res := loadResult{Targets: cfg.Targets, Clients: cfg.Clients, Seconds: elapsed.Seconds()}
	var assign, unblock []int64
	for _, st := range stats {
		res.Cycles += st.cycles
		res.Errors += st.errors
		res.NoFree += st.noFree
		res.KeepAlives += st.kept
		assign = append(assign, st.assign...)
		unblock = append(unblock, st.unblock...)
	}
	res.CyclesPerSec = float64(res.Cycles) / elapsed.Seconds()
	res.AssignP50Ms, res.AssignP99Ms = percentileMs(assign, 0.50), percentileMs(assign, 0.99)
	res.UnblockP50Ms, res.UnblockP99Ms = percentileMs(unblock, 0.50), percentileMs(unblock, 0.99)
	res.DoubleAssignments = holds.doubles.Load()
	res.ErrorSamples = holds.samples.get()
	if res.Cycles > 0 {
		res.LoadgenCPUUs = (cpu1 - cpu0) * 1e6 / float64(res.Cycles)
	}
	return res, nil
}

func percentileMs(ns []int64, p float64) float64 {
	if len(ns) == 0 {
		return 0
	}
	slices.Sort(ns)
	i := int(p*float64(len(ns))+0.5) - 1
	i = max(0, min(i, len(ns)-1))
	return float64(ns[i]) / 1e6
}

func runClient(c *httpConn, st *clientStats, holds *holdMap, prefix string, hold time.Duration, keepAliveEvery int, pace time.Duration, next time.Time, measuring, stop *atomic.Bool) {
	body := make([]byte, 0, 256)
	n := 0
	fail := func(what string, status int, resp []byte, err error) {
		if measuring.Load() {
			st.errors++
		}
		if err != nil {
			holds.samples.add(fmt.Sprintf("%s: %v", what, err))
			time.Sleep(10 * time.Millisecond) // do not spin on a dead target
			return
		}
		holds.samples.add(fmt.Sprintf("%s: HTTP %d %s", what, status, truncate(resp, 200)))
	}
	for !stop.Load() {
		if pace > 0 {
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			} else if d < -pace {
				next = time.Now() // fell behind: go on from here, no burst
			}
			next = next.Add(pace)
		}
		t0 := time.Now()
		status, resp, err := c.do("POST", prefix+"/assign", nil)
		t1 := time.Now()
		if err != nil || status != 200 {
			if status == 404 && measuring.Load() {
				st.noFree++
			}
			fail("assign", status, resp, err)
			continue
		}
		token, lease, ok := parseAssign(resp)
		if !ok {
			fail("assign", status, resp, fmt.Errorf("cannot read token and lease_id from %s", truncate(resp, 200)))
			continue
		}
		holds.take(token, lease)
		if hold > 0 {
			time.Sleep(hold)
		}
		if n++; keepAliveEvery > 0 && n%keepAliveEvery == 0 {
			body = appendUnblockBody(body[:0], token, lease)
			status, resp, err = c.do("POST", prefix+"/keep-alive", body)
			if status == 409 {
				// Our own live lease is not the live lease: handed out twice.
				holds.doubles.Add(1)
				holds.samples.add(fmt.Sprintf("keep-alive of token %s lease %d refused: %s", token, lease, truncate(resp, 200)))
			}
			if err != nil || status != 200 {
				holds.drop(token, lease)
				fail("keep-alive", status, resp, err)
				continue
			}
			if measuring.Load() {
				st.kept++
			}
		}
		// Forget the token before unblocking: once the unblock is sent the
		// service may hand it to another client.
		holds.drop(token, lease)
		body = appendUnblockBody(body[:0], token, lease)
		status, resp, err = c.do("POST", prefix+"/unblock", body)
		t2 := time.Now()
		if status == 409 {
			// Our own live lease was refused (lease_mismatch: another lease
			// displaced it; not_assigned: someone else released it). Leases
			// in the benchmark outlive a cycle by far, so the token was
			// handed out twice.
			holds.doubles.Add(1)
			holds.samples.add(fmt.Sprintf("unblock of token %s lease %d refused: %s", token, lease, truncate(resp, 200)))
		}
		if err != nil || status != 200 {
			fail("unblock", status, resp, err)
			continue
		}
		if measuring.Load() {
			st.cycles++
			st.assign = append(st.assign, int64(t1.Sub(t0)))
			st.unblock = append(st.unblock, int64(t2.Sub(t1)))
		}
	}
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

var (
	tokenKey = []byte(`"token":"`)
	leaseKey = []byte(`"lease_id":`)
)

// parseAssign reads token and lease_id from an assign response without a
// general JSON decoder; a token with escapes falls back to encoding/json.
func parseAssign(b []byte) (string, int64, bool) {
	i := bytes.Index(b, tokenKey)
	j := bytes.Index(b, leaseKey)
	if i < 0 || j < 0 {
		return "", 0, false
	}
	rest := b[i+len(tokenKey):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return "", 0, false
	}
	if bytes.IndexByte(rest[:end], '\\') >= 0 {
		var v struct {
			Token   string `json:"token"`
			LeaseID int64  `json:"lease_id"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return "", 0, false
		}
		return v.Token, v.LeaseID, true
	}
	num := b[j+len(leaseKey):]
	k := 0
	for k < len(num) && num[k] >= '0' && num[k] <= '9' {
		k++
	}
	lease, err := strconv.ParseInt(string(num[:k]), 10, 64)
	if err != nil {
		return "", 0, false
	}
	return string(rest[:end]), lease, true
}

func appendUnblockBody(b []byte, token string, lease int64) []byte {
	b = append(b, `{"token":`...)
	if plainJSONString(token) {
		b = append(b, '"')
		b = append(b, token...)
		b = append(b, '"')
	} else {
		q, _ := json.Marshal(token)
		b = append(b, q...)
	}
	b = append(b, `,"lease_id":`...)
	b = strconv.AppendInt(b, lease, 10)
	return append(b, '}')
}

func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}
