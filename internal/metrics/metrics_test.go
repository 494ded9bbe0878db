package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tokenlease/tokenlease/internal/metrics"
)

// scrape fetches /metrics as Prometheus would and parses the text format.
func scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(metrics.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return fams
}

// sample finds the series of family name with exactly the given labels.
func sample(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	t.Helper()
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	fam, ok := fams[name]
	if !ok {
		t.Fatalf("scrape has no %s", name)
	}
	for _, m := range fam.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return m
		}
	}
	t.Fatalf("scrape has no %s%v", name, want)
	return nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return m.GetUntyped().GetValue()
}

// withSources installs scrape-time sources for one test.
func withSources(t *testing.T, occ metrics.OccupancyFunc, stat func() *pgxpool.Stat) {
	t.Helper()
	metrics.SetOccupancySource(occ)
	metrics.SetDBPoolSource(stat)
	t.Cleanup(func() {
		metrics.SetOccupancySource(nil)
		metrics.SetDBPoolSource(nil)
	})
}

func TestScrapeShowsEveryMetricWithItsRecordedValue(t *testing.T) {
	// A pool that never connects: its Stat is real, MaxConns from the URL.
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?pool_max_conns=7")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	withSources(t, func(context.Context) ([]metrics.Occupancy, error) {
		return []metrics.Occupancy{{Pool: "default", Free: 90, Assigned: 10}, {Pool: "empty"}}, nil
	}, pool.Stat)

	before := scrape(t)
	streamsBefore := value(sample(t, before, metrics.NameEventStreams))
	sweepsBefore := sample(t, before, metrics.NameSweepDuration).GetHistogram().GetSampleCount()

	metrics.ObserveRequest("/scrape-test/assign", 200, 3*time.Millisecond)
	metrics.ObserveRequest("/scrape-test/assign", 200, 40*time.Millisecond)
	metrics.ObserveRequest("/scrape-test/assign", 503, time.Millisecond)
	metrics.LeaseLapsed("scrape-test", 3)
	metrics.LeaseLapsed("scrape-test", 0)
	metrics.TokensExpired("scrape-test", 2)
	metrics.Waiters("scrape-test").Inc()
	metrics.Waiters("scrape-test").Inc()
	metrics.Waiters("scrape-test").Dec()
	metrics.EventStreams().Inc()
	defer metrics.EventStreams().Dec()
	metrics.BatchSize(metrics.BatchUnblock, 5)
	metrics.BatchSize(metrics.BatchUnblock, 7)
	metrics.EventReaderLag(1500 * time.Millisecond)
	metrics.SweepDuration(20 * time.Millisecond)
	metrics.SetSweepInterval(2 * time.Second)

	fams := scrape(t)
	for _, name := range metrics.Names() {
		if _, ok := fams[name]; !ok {
			t.Errorf("Names() lists %s but the scrape does not show it", name)
		}
	}
	for name := range fams {
		if !slices.Contains(metrics.Names(), name) && !hasAnyPrefix(name, "go_", "process_") {
			t.Errorf("the scrape shows %s, which Names() does not list", name)
		}
	}

	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{metrics.NameTokens, []string{"pool", "default", "state", "free"}, 90},
		{metrics.NameTokens, []string{"pool", "default", "state", "assigned"}, 10},
		{metrics.NameTokens, []string{"pool", "empty", "state", "free"}, 0},
		{metrics.NameDBUp, nil, 1},
		{metrics.NameHTTPRequests, []string{"route", "/scrape-test/assign", "code", "200"}, 2},
		{metrics.NameHTTPRequests, []string{"route", "/scrape-test/assign", "code", "503"}, 1},
		{metrics.NameLeasesLapsed, []string{"pool", "scrape-test"}, 3},
		{metrics.NameTokensExpired, []string{"pool", "scrape-test"}, 2},
		{metrics.NameWaiters, []string{"pool", "scrape-test"}, 1},
		{metrics.NameEventStreams, nil, streamsBefore + 1},
		{metrics.NameEventReaderLag, nil, 1.5},
		{metrics.NameSweepInterval, nil, 2},
		{metrics.NameDBPoolMax, nil, 7},
		{metrics.NameDBPoolTotal, nil, 0},
		{metrics.NameDBPoolAcquires, nil, 0},
	} {
		if got := value(sample(t, fams, tc.name, tc.labels...)); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}

	for _, name := range metrics.Names() {
		isHist := fams[name].GetType() == dto.MetricType_HISTOGRAM
		if isHist != slices.Contains(metrics.Histograms(), name) {
			t.Errorf("%s: histogram %v, but Histograms() says %v", name, isHist, !isHist)
		}
	}

	h := sample(t, fams, metrics.NameHTTPDuration, "route", "/scrape-test/assign").GetHistogram()
	if h.GetSampleCount() != 3 || !near(h.GetSampleSum(), 0.044) {
		t.Errorf("request duration: count %d sum %v, want 3 and 0.044", h.GetSampleCount(), h.GetSampleSum())
	}
	b := sample(t, fams, metrics.NameBatchSize, "kind", "unblock").GetHistogram()
	if b.GetSampleCount() != 2 || b.GetSampleSum() != 12 {
		t.Errorf("batch size: count %d sum %v, want 2 and 12", b.GetSampleCount(), b.GetSampleSum())
	}
	if got := sample(t, fams, metrics.NameSweepDuration).GetHistogram().GetSampleCount(); got != sweepsBefore+1 {
		t.Errorf("sweep duration count = %d, want %d", got, sweepsBefore+1)
	}
	for _, kind := range []string{metrics.BatchAssign, metrics.BatchKeepalive} {
		sample(t, fams, metrics.NameBatchSize, "kind", kind) // present from the start, at zero
	}
}

func TestLabelValuesStayBounded(t *testing.T) {
	t.Cleanup(metrics.ResetRoutes)
	for i := range 1000 {
		metrics.ObserveRequest(fmt.Sprintf("/tokens/raw-value-%d", i), 200, time.Millisecond)
	}
	metrics.ObserveRequest("/bounded-test", 999, time.Millisecond)
	metrics.ObserveRequest("", 404, time.Millisecond) // reserved: never folded
	metrics.BatchSize("no-such-kind", 1)

	fams := scrape(t)
	routes := map[string]bool{}
	for _, m := range fams[metrics.NameHTTPRequests].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "route" {
				routes[lp.GetValue()] = true
			}
		}
	}
	if len(routes) > 200 {
		t.Errorf("1000 raw paths made %d route label values, want them folded into %q", len(routes), metrics.OtherLabel)
	}
	if !routes[metrics.OtherLabel] {
		t.Errorf("routes past the bound are not recorded as %q", metrics.OtherLabel)
	}
	sample(t, fams, metrics.NameHTTPRequests, "route", "unmatched", "code", "404")
	if !routes["/bounded-test"] {
		// The bound was reached by the raw paths above: the route went to "other".
		sample(t, fams, metrics.NameHTTPRequests, "route", metrics.OtherLabel, "code", metrics.OtherLabel)
	}
	sample(t, fams, metrics.NameBatchSize, "kind", metrics.OtherLabel)
	if n := len(fams[metrics.NameBatchSize].GetMetric()); n != 4 {
		t.Errorf("batch kinds: %d series, want 4 (assign, unblock, keepalive, other)", n)
	}
}

func TestScrapeSurvivesTheDatabaseBeingDown(t *testing.T) {
	withSources(t, func(context.Context) ([]metrics.Occupancy, error) {
		return nil, errors.New("connection refused")
	}, nil)
	fams := scrape(t)
	if got := value(sample(t, fams, metrics.NameDBUp)); got != 0 {
		t.Errorf("%s = %v while occupancy cannot be read, want 0", metrics.NameDBUp, got)
	}
	if _, ok := fams[metrics.NameTokens]; ok {
		t.Errorf("%s is scraped although it could not be read", metrics.NameTokens)
	}
	if _, ok := fams[metrics.NameEventStreams]; !ok {
		t.Errorf("the rest of the scrape is lost when the database is down")
	}
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return len(s) >= len(p) && s[:len(p)] == p })
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func BenchmarkObserveRequest(b *testing.B) {
	for b.Loop() {
		metrics.ObserveRequest("/pools/:pool/tokens/assign", 200, time.Millisecond)
	}
}
