package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// api is a client of tokend's HTTP API with one admin key.
type api struct {
	base   string
	key    string
	client *http.Client

	mu     sync.Mutex
	counts map[string]int // "METHOD route status" -> answers
}

func (a *api) do(ctx context.Context, method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a.count(method, path, resp.StatusCode)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

func (a *api) count(method, path string, code int) {
	route := path
	if i := strings.IndexByte(route, '?'); i >= 0 {
		route = route[:i]
	}
	a.mu.Lock()
	a.counts[fmt.Sprintf("%s %s %d", method, route, code)]++
	a.mu.Unlock()
}

type lease struct {
	Token   string `json:"token"`
	LeaseID int64  `json:"lease_id"`
}

// poolPlan is one pool's part in the workload.
type poolPlan struct {
	name     string
	settings map[string]any
	tokens   int                 // generated at the start
	more     int                 // generated again at 45 % of the run
	workers  func(f float64) int // holders wanted at fraction f of the run
	hold     [2]time.Duration    // how long a holder keeps a token
	forget   float64             // share of leases never unblocked (they lapse)
	wait     string              // assign?wait=, "" for none
}

// ramp rises from lo to hi at the middle of the run and falls to end.
func ramp(lo, hi, end int) func(float64) int {
	return func(f float64) int {
		switch {
		case f < 0.5:
			return lo + int(float64(hi-lo)*f/0.5)
		case f < 0.8:
			return hi
		default:
			return end
		}
	}
}

// workload drives tokend for d over a few pools: holders that assign,
// keep alive and unblock (some forget, and their leases lapse), waiters on
// a pool with fewer tokens than holders, tokens that die without
// keep-alive, and event streams, some refused past MAX_STREAMS.
func workload(ctx context.Context, a *api, d time.Duration, maxStreams int) error {
	plans := []poolPlan{
		{name: "default", tokens: 150, more: 100, workers: ramp(6, 45, 20),
			hold: [2]time.Duration{time.Second, 4 * time.Second}, forget: 0.08},
		{name: "proxies-eu", settings: map[string]any{"lease_ttl": "10m", "keepalive_ttl": "24h", "max_tokens": 500},
			tokens: 80, workers: ramp(4, 30, 10),
			hold: [2]time.Duration{500 * time.Millisecond, 3 * time.Second}, forget: 0.05},
		{name: "licences", settings: map[string]any{"max_tokens": 25},
			tokens: 25, workers: ramp(8, 40, 12), wait: "5s",
			hold: [2]time.Duration{time.Second, 3 * time.Second}, forget: 0.02},
	}
	const probes = "probes" // tokens nobody keeps alive: they die after 8 s
	for _, p := range plans {
		if p.settings != nil {
			if code, err := a.do(ctx, http.MethodPut, "/pools/"+p.name, p.settings, nil); err != nil || code >= 300 {
				return fmt.Errorf("PUT /pools/%s: %d %v", p.name, code, err)
			}
		}
		if err := generate(ctx, a, p.name, p.tokens); err != nil {
			return err
		}
	}
	if code, err := a.do(ctx, http.MethodPut, "/pools/"+probes, map[string]any{"keepalive_ttl": "8s"}, nil); err != nil || code >= 300 {
		return fmt.Errorf("PUT /pools/%s: %d %v", probes, code, err)
	}

	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	frac := func() float64 { return float64(time.Since(start)) / float64(d) }
	var wg sync.WaitGroup

	for _, p := range plans {
		wg.Go(func() { holders(ctx, a, p, frac) })
		if p.more > 0 {
			wg.Go(func() {
				if sleep(ctx, time.Duration(0.45*float64(d))) {
					_ = generate(context.WithoutCancel(ctx), a, p.name, p.more)
				}
			})
		}
	}
	// probes: a batch every 5 s; the first 5 of each of the last four
	// batches get a heartbeat, the rest die after KEEPALIVE_TTL.
	wg.Go(func() {
		rctx := context.WithoutCancel(ctx)
		var kept []string
		for i := 0; ; i++ {
			if i%5 == 0 {
				var r struct {
					Tokens []string `json:"tokens"`
				}
				if code, err := a.do(rctx, http.MethodPost, "/pools/"+probes+"/tokens/generate", map[string]int{"count": 20}, &r); err == nil && code == 201 {
					kept = append(kept, r.Tokens[:5]...)
				}
			}
			for _, tok := range kept[max(0, len(kept)-20):] {
				a.do(rctx, http.MethodPost, "/pools/"+probes+"/tokens/keep-alive", map[string]string{"token": tok}, nil)
			}
			if !sleep(ctx, time.Second) {
				return
			}
		}
	})
	// event streams: 1, then 3, then 4 (MAX_STREAMS) with a refused extra
	// every 2 s, then 2.
	wg.Go(func() { streams(ctx, a, frac, maxStreams) })
	wg.Wait()
	return nil
}

func generate(ctx context.Context, a *api, pool string, n int) error {
	code, err := a.do(ctx, http.MethodPost, "/pools/"+pool+"/tokens/generate", map[string]int{"count": n}, nil)
	if err != nil || code != 201 {
		return fmt.Errorf("generate %d in %s: %d %v", n, pool, code, err)
	}
	return nil
}

// holders keeps p.workers(f) holders going in pool p.
func holders(ctx context.Context, a *api, p poolPlan, frac func() float64) {
	var wg sync.WaitGroup
	defer wg.Wait()
	var stops []context.CancelFunc
	for {
		want := p.workers(frac())
		for len(stops) < want {
			hctx, stop := context.WithCancel(ctx)
			stops = append(stops, stop)
			id := len(stops)
			wg.Go(func() { holder(hctx, a, p, id) })
		}
		for len(stops) > want {
			stops[len(stops)-1]()
			stops = stops[:len(stops)-1]
		}
		if !sleep(ctx, 500*time.Millisecond) {
			return
		}
	}
}

// holder assigns, keeps alive and unblocks until ctx ends. Its requests
// are never cancelled: a client that hangs up on a waiting assign counts as
// a 503, and one that hangs up mid-assign leaves a lease to lapse, neither of
// which the picture should show as the run's end.
func holder(ctx context.Context, a *api, p poolPlan, id int) {
	base := "/pools/" + p.name + "/tokens/"
	holderName := fmt.Sprintf("%s-worker-%d", p.name, id)
	rctx := context.WithoutCancel(ctx)
	for ctx.Err() == nil {
		forget := rand.Float64() < p.forget
		ttl := "10s"
		if forget {
			ttl = "1s"
		}
		path := base + "assign"
		if p.wait != "" {
			path += "?wait=" + p.wait
		}
		var l lease
		code, err := a.do(rctx, http.MethodPost, path, map[string]string{"holder": holderName, "ttl": ttl}, &l)
		if err != nil || code != 200 {
			sleep(ctx, 300*time.Millisecond)
			continue
		}
		hold := p.hold[0] + rand.N(p.hold[1]-p.hold[0])
		if forget { // the lease lapses after its 1 s
			sleep(ctx, hold)
			continue
		}
		if sleep(ctx, hold/2) && rand.IntN(3) == 0 {
			a.do(rctx, http.MethodPost, base+"keep-alive", map[string]any{"token": l.Token, "lease_id": l.LeaseID}, nil)
		}
		sleep(ctx, hold/2)
		a.do(rctx, http.MethodPost, base+"unblock", map[string]any{"token": l.Token, "lease_id": l.LeaseID}, nil)
	}
}

func streams(ctx context.Context, a *api, frac func() float64, maxStreams int) {
	var open []context.CancelFunc
	defer func() {
		for _, c := range open {
			c()
		}
	}()
	for {
		f := frac()
		want := 1
		switch {
		case f >= 0.8:
			want = 2
		case f >= 0.5:
			want = maxStreams
		case f >= 0.2:
			want = 3
		}
		for len(open) < want {
			sctx, stop := context.WithCancel(ctx)
			if stream(sctx, a) != http.StatusOK {
				stop()
				break
			}
			open = append(open, stop)
		}
		for len(open) > want {
			open[len(open)-1]()
			open = open[:len(open)-1]
		}
		if f >= 0.5 && f < 0.8 && len(open) >= maxStreams {
			// One more than the pod holds: 503 unavailable.
			sctx, stop := context.WithCancel(ctx)
			if stream(sctx, a) == http.StatusOK {
				open = append(open, stop)
			} else {
				stop()
			}
		}
		if !sleep(ctx, 2*time.Second) {
			return
		}
	}
}

// stream opens GET /events and reads it until ctx ends; it returns the
// answer's status.
func stream(ctx context.Context, a *api) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/events", nil)
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	resp, err := a.client.Do(req)
	if err != nil {
		return 0
	}
	a.count(http.MethodGet, "/events", resp.StatusCode)
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
		}
	}()
	return resp.StatusCode
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (a *api) logCounts() {
	a.mu.Lock()
	defer a.mu.Unlock()
	keys := make([]string, 0, len(a.counts))
	for k := range a.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		log.Printf("  %6d  %s", a.counts[k], k)
	}
}
