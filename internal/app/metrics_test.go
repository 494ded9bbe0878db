package app_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

// scrape reads the pod's GET /metrics as Prometheus would.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, pod *apptest.Pod) scrape {
	t.Helper()
	url := pod.App.MetricsURL()
	if url == "" {
		t.Fatal("the pod serves no metrics")
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the scrape: %v", err)
	}
	return fams
}

// value is the series of family name with exactly labels ("k=v" each): a
// counter's or gauge's value, a histogram's count; 0 when absent.
func (s scrape) value(name string, labels ...string) float64 {
	m := s.find(name, labels...)
	switch {
	case m == nil:
		return 0
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return m.GetUntyped().GetValue()
}

// sum is a histogram's sum of observations; 0 when absent.
func (s scrape) sum(name string, labels ...string) float64 {
	return s.find(name, labels...).GetHistogram().GetSampleSum()
}

func (s scrape) find(name string, labels ...string) *dto.Metric {
	want := strings.Join(labels, ",")
	for _, m := range s[name].GetMetric() {
		var got []string
		for _, lp := range m.GetLabel() {
			got = append(got, lp.GetName()+"="+lp.GetValue())
		}
		if strings.Join(got, ",") == want {
			return m
		}
	}
	return nil
}

// The metrics after a scripted workload: generate 3, assign 5 (one lease
// lapses and is swept), unblock 1, one event stream open, one assign
// waiting. Counters are process-wide and other tests of this package ran
// pods before, so the test compares counters with a scrape taken before the
// workload; it does not run in parallel, so no other pod records meanwhile.
func TestMetricsAfterAWorkload(t *testing.T) {
	pod := apptest.NewPod(t, apptest.WithMetrics())
	before := scrapeMetrics(t, pod)
	delta := func(after scrape, name string, labels ...string) float64 {
		return after.value(name, labels...) - before.value(name, labels...)
	}
	pool := "pool=default"

	pod.Generate(t, 3)
	a := pod.Assign(t, map[string]any{"ttl": "1h"})
	pod.Assign(t, map[string]any{"ttl": "1h"})
	pod.Assign(t, map[string]any{"ttl": "200ms"}) // lapses; the sweep frees it
	apptest.Eventually(t, 20*time.Second, "the sweep to free the lapsed lease", func() bool {
		return delta(scrapeMetrics(t, pod), "tokenlease_leases_lapsed_total", pool) == 1
	})
	pod.Unblock(t, a)
	pod.Assign(t, map[string]any{"ttl": "1h"})
	pod.Assign(t, map[string]any{"ttl": "1h"}) // none free from here on

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := http.NewRequestWithContext(ctx, http.MethodGet, pod.URL+"/tokens/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The test kit's client reads whole answers to check them: the stream
	// goes around it.
	stream.Header.Set("Authorization", "Bearer "+pod.AdminKey)
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		if resp, err := http.DefaultClient.Do(stream); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	waiter, err := http.NewRequestWithContext(ctx, http.MethodPost, pod.URL+"/tokens/assign?wait=60s", nil)
	if err != nil {
		t.Fatal(err)
	}
	waiterDone := make(chan struct{})
	go func() {
		defer close(waiterDone)
		if resp, err := pod.Client.Do(waiter); err == nil {
			resp.Body.Close()
		}
	}()
	var s scrape
	apptest.Eventually(t, 20*time.Second, "one stream open and one assign waiting", func() bool {
		s = scrapeMetrics(t, pod)
		return delta(s, "tokenlease_event_streams") == 1 && delta(s, "tokenlease_waiters", pool) == 1
	})

	checks := []struct {
		what      string
		got, want float64
	}{
		{"free tokens", s.value("tokenlease_tokens", pool, "state=free"), 0},
		{"assigned tokens", s.value("tokenlease_tokens", pool, "state=assigned"), 3},
		{"database up", s.value("tokenlease_db_up"), 1},
		{"generate requests", delta(s, "tokenlease_http_requests_total", "code=201", "route=/tokens/generate"), 1},
		{"assign requests answered", delta(s, "tokenlease_http_requests_total", "code=200", "route=/tokens/assign"), 5},
		{"unblock requests", delta(s, "tokenlease_http_requests_total", "code=200", "route=/tokens/unblock"), 1},
		{"assign durations", delta(s, "tokenlease_http_request_duration_seconds", "route=/tokens/assign"), 5},
		{"lapsed leases", delta(s, "tokenlease_leases_lapsed_total", pool), 1},
		{"expired tokens", delta(s, "tokenlease_tokens_expired_total", pool), 0},
		{"unblock batches", delta(s, "tokenlease_batch_size", "kind=unblock"), 1},
		{"sweep interval", s.value("tokenlease_sweep_interval_seconds"), 0.2},
		{"connection pool size", s.value("tokenlease_db_pool_max_conns"), 12},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	// The waiter's first try, not yet answered, is a batch too; one at a
	// time, each batch holds one request.
	if n := delta(s, "tokenlease_batch_size", "kind=assign"); n < 6 {
		t.Errorf("assign batches: %v, want at least 6", n)
	} else if sum := s.sum("tokenlease_batch_size", "kind=assign") - before.sum("tokenlease_batch_size", "kind=assign"); sum != n {
		t.Errorf("assign batches of one request each: %v requests in %v batches", sum, n)
	}
	if n := delta(s, "tokenlease_sweep_duration_seconds"); n < 1 {
		t.Errorf("sweep runs recorded: %v", n)
	}
	if lag := s.value("tokenlease_event_reader_lag_seconds"); s.find("tokenlease_event_reader_lag_seconds") == nil || lag < 0 || lag > 5 {
		t.Errorf("event reader lag: %v (present: %v), want a few seconds at most", lag, s.find("tokenlease_event_reader_lag_seconds") != nil)
	}
	for _, name := range []string{"tokenlease_db_pool_acquires_total", "go_goroutines", "process_resident_memory_bytes"} {
		if s[name] == nil {
			t.Errorf("the scrape has no %s", name)
		}
	}
	for name, fam := range s {
		for _, m := range fam.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "route" && !strings.HasPrefix(lp.GetValue(), "/") && lp.GetValue() != "unmatched" {
					t.Errorf("%s has a route label that is no template: %q", name, lp.GetValue())
				}
			}
		}
	}

	cancel()
	<-streamDone
	<-waiterDone
	apptest.Eventually(t, 20*time.Second, "the stream and the waiter to be gone from the gauges", func() bool {
		s := scrapeMetrics(t, pod)
		return delta(s, "tokenlease_event_streams") == 0 && delta(s, "tokenlease_waiters", pool) == 0
	})
}

// The sweep records what it tidied under each pool's own name: leases
// lapsed in one pool, tokens dead in another, nothing under a third.
func TestSweepMetricsPerPool(t *testing.T) {
	pod := apptest.NewPod(t, apptest.WithMetrics())
	for name, settings := range map[string]any{
		"sweep-lapsing": map[string]any{}, "sweep-dying": map[string]any{"keepalive_ttl": "300ms"}, "sweep-quiet": map[string]any{},
	} {
		if r := pod.Call(t, "PUT", "/pools/"+name, settings); r.Status != http.StatusCreated {
			t.Fatalf("PUT /pools/%s: %d %s", name, r.Status, r.Body)
		}
	}
	for pool, n := range map[string]int{"sweep-lapsing": 2, "sweep-dying": 3, "sweep-quiet": 1} {
		if r := pod.Call(t, "POST", "/pools/"+pool+"/tokens/generate", map[string]any{"count": n}); r.Status != http.StatusCreated {
			t.Fatalf("generate in %s: %d %s", pool, r.Status, r.Body)
		}
	}
	for range 2 {
		if r := pod.Call(t, "POST", "/pools/sweep-lapsing/tokens/assign?ttl=200ms", nil); r.Status != http.StatusOK {
			t.Fatalf("assign: %d %s", r.Status, r.Body)
		}
	}
	var s scrape
	apptest.Eventually(t, 20*time.Second, "the sweeps to count 2 lapsed leases and 3 dead tokens", func() bool {
		s = scrapeMetrics(t, pod)
		return s.value("tokenlease_leases_lapsed_total", "pool=sweep-lapsing") == 2 &&
			s.value("tokenlease_tokens_expired_total", "pool=sweep-dying") == 3
	})
	for _, c := range []struct{ name, pool string }{
		{"tokenlease_tokens_expired_total", "sweep-lapsing"},
		{"tokenlease_leases_lapsed_total", "sweep-dying"},
		{"tokenlease_leases_lapsed_total", "sweep-quiet"},
		{"tokenlease_tokens_expired_total", "sweep-quiet"},
	} {
		if v := s.value(c.name, "pool="+c.pool); v != 0 {
			t.Errorf("%s{pool=%s} = %v, want 0", c.name, c.pool, v)
		}
	}
}
