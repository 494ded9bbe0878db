package faults_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

// load is a set of clients that assign (with a short wait), hold and release
// tokens on several pods, and record every answer. It checks as it goes that
// no token is ever handed to a second holder while the first still holds it.
type load struct {
	pods []*apptest.Pod

	mu       sync.Mutex
	held     map[string]int64 // token -> lease id, while a client holds it
	leases   map[int64]bool   // every lease id handed out
	statuses map[string]int   // "status code" -> count
	problems []string
	slowest  time.Duration
}

// requestBound is the longest any request may take, fault or not: a fault
// must end in an answer, not a hang.
const requestBound = 10 * time.Second

func newLoad(pods ...*apptest.Pod) *load {
	return &load{pods: pods, held: map[string]int64{}, leases: map[int64]bool{}, statuses: map[string]int{}}
}

// run starts workers clients per pod until ctx ends; the returned function
// waits for them to release what they hold and stop.
func (l *load) run(ctx context.Context, workers int) (wait func()) {
	var wg sync.WaitGroup
	for _, pod := range l.pods {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.worker(ctx, pod)
			}()
		}
	}
	return wg.Wait
}

type answer struct {
	status     int
	code       string
	retryAfter string
	body       map[string]any
	err        error
}

// call sends one request and records its answer.
func (l *load) call(pod *apptest.Pod, method, path string, body any) answer {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestBound+5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, pod.URL+path, rd)
	start := time.Now()
	resp, err := pod.Client.Do(req)
	took := time.Since(start)
	var a answer
	if err != nil {
		a.err = err
	} else {
		a.status = resp.StatusCode
		a.retryAfter = resp.Header.Get("Retry-After")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if json.Unmarshal(b, &a.body) != nil {
			a.err = fmt.Errorf("not JSON: %q", b)
		} else if e, ok := a.body["error"].(map[string]any); ok {
			a.code, _ = e["code"].(string)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.slowest = max(l.slowest, took)
	key := fmt.Sprintf("%d %s", a.status, a.code)
	switch {
	case a.err != nil:
		key = "transport error"
		l.problem("%s %s: %v", method, path, a.err)
	case a.status >= 500 && (a.status != http.StatusServiceUnavailable || a.code != "unavailable"):
		l.problem("%s %s: %d %v", method, path, a.status, a.body)
	case a.status == http.StatusServiceUnavailable && a.retryAfter == "":
		l.problem("%s %s: 503 without Retry-After", method, path)
	}
	if took > requestBound {
		l.problem("%s %s took %v", method, path, took)
	}
	l.statuses[key]++
	return a
}

func (l *load) problem(format string, args ...any) {
	if len(l.problems) < 20 {
		l.problems = append(l.problems, fmt.Sprintf(format, args...))
	}
}

func (l *load) worker(ctx context.Context, pod *apptest.Pod) {
	for ctx.Err() == nil {
		a := l.call(pod, "POST", "/tokens/assign?wait=1s", nil)
		if a.status != http.StatusOK {
			if a.status == http.StatusServiceUnavailable {
				sleepCtx(ctx, 20*time.Millisecond) // as Retry-After asks, shortened
			}
			continue
		}
		tok, _ := a.body["token"].(string)
		id := int64(a.body["lease_id"].(float64))
		l.mu.Lock()
		if prev, ok := l.held[tok]; ok {
			l.problem("token %q handed out with lease %d while lease %d still holds it", tok, id, prev)
		}
		if l.leases[id] {
			l.problem("lease id %d handed out twice", id)
		}
		l.held[tok], l.leases[id] = id, true
		l.mu.Unlock()
		sleepCtx(ctx, 5*time.Millisecond)
		// The client stops using the token before it asks to release it:
		// from here another holder is fine.
		l.mu.Lock()
		delete(l.held, tok)
		l.mu.Unlock()
		l.release(pod, tok, id)
	}
}

// release unblocks the lease, retrying while the service is unavailable,
// until it is released (or found released already, when an answer was lost).
func (l *load) release(pod *apptest.Pod, tok string, id int64) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		a := l.call(pod, "POST", "/tokens/unblock", map[string]any{"token": tok, "lease_id": id})
		switch {
		case a.status == http.StatusOK, a.code == "not_assigned", a.code == "lease_mismatch":
			return
		case a.status != http.StatusServiceUnavailable && a.err == nil:
			l.mu.Lock()
			l.problem("unblock %d: %d %v", id, a.status, a.body)
			l.mu.Unlock()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	l.mu.Lock()
	l.problem("lease %d could not be released within 30s", id)
	l.mu.Unlock()
}

// check fails the test with every problem seen, and logs the answers.
func (l *load) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := make([]string, 0, len(l.statuses))
	for k := range l.statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " [%s]=%d", k, l.statuses[k])
	}
	t.Logf("answers:%s; slowest %v; %d leases", b.String(), l.slowest.Round(time.Millisecond), len(l.leases))
	for _, p := range l.problems {
		t.Error(p)
	}
}

// count returns how many answers had the given "status code" key.
func (l *load) count(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.statuses[key]
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// servesAgain waits until pod answers an assign and a stats, and returns
// how long that took.
func servesAgain(t *testing.T, pod *apptest.Pod, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		r := pod.Do(t, "GET", "/tokens/stats", nil)
		if r.Status == http.StatusOK {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s does not serve %v after the fault ended: %d %s", pod.URL, within, r.Status, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nothingLost checks that every token generated is still live (free or
// assigned) on every pod: the test deletes none and none expires.
func nothingLost(t *testing.T, tokens []string, pods ...*apptest.Pod) {
	t.Helper()
	for _, pod := range pods {
		r := pod.Do(t, "GET", "/tokens/stats", nil)
		var st struct{ Free, Assigned, Total int64 }
		r.JSON(t, &st)
		if st.Total != int64(len(tokens)) {
			t.Errorf("%s: stats %+v, want a total of %d", pod.URL, st, len(tokens))
		}
		for _, tok := range tokens {
			if r := pod.Do(t, "GET", "/tokens/"+tok, nil); r.Status != http.StatusOK {
				t.Errorf("token %s: %d %s", tok, r.Status, r.Body)
			}
		}
	}
}
