package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakePrometheus answers every query_range with one series per query that
// carries the labels the dashboard's legends use, and records the queries.
func fakePrometheus(t *testing.T) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/rules" {
			fmt.Fprint(w, `{"status":"success","data":{"groups":[{"rules":[{"name":"TokenleasePodDown","state":"inactive"}]}]}}`)
			return
		}
		if r.URL.Path != "/api/v1/query_range" {
			http.NotFound(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		mu.Lock()
		queries = append(queries, r.Form.Get("query"))
		mu.Unlock()
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"matrix","result":[
			{"metric":{"pool":"default","state":"free","instance":"pod-1","kind":"assign","code":"503","route":"/events"},
			 "values":[[%s,"1"],[%s,"NaN"]]}]}}`, r.Form.Get("start"), r.Form.Get("end"))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), queries...)
	}
}

// TestPageDataCoversEveryPanel: the page's data holds every panel of
// tokenlease.json with its layout, each drawn from all of its own
// targets, with every variable substituted.
func TestPageDataCoversEveryPanel(t *testing.T) {
	t.Parallel()
	dash, err := loadDashboard("../tokenlease.json")
	if err != nil {
		t.Fatal(err)
	}
	prom, queried := fakePrometheus(t)
	to := time.Unix(1_800_000_000, 0)
	h := handler(dash, prometheus{URL: prom.URL, Client: prom.Client()}, to.Add(-150*time.Second), to, 2*time.Second)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/dashboard", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/dashboard: %d %s", rec.Code, rec.Body)
	}
	var v view
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}

	want := dash.panels()
	if len(want) < 10 || len(v.Panels) != len(want) {
		t.Fatalf("the page has %d panels, the dashboard %d", len(v.Panels), len(want))
	}
	leftover := regexp.MustCompile(`\$`)
	targets := 0
	for i, p := range v.Panels {
		w := want[i]
		if p.ID != w.ID || p.Title != w.Title || p.GridPos != w.GridPos || p.Unit != w.FieldConfig.Defaults.Unit {
			t.Errorf("panel %d: page has %+v, dashboard %q %+v %q", i, p, w.Title, w.GridPos, w.FieldConfig.Defaults.Unit)
		}
		if len(p.Errors) > 0 {
			t.Errorf("panel %q: %v", p.Title, p.Errors)
		}
		if len(p.Queries) != len(w.Targets) || len(p.Series) != len(w.Targets) {
			t.Errorf("panel %q: %d queries and %d series for %d targets", p.Title, len(p.Queries), len(p.Series), len(w.Targets))
		}
		for _, q := range p.Queries {
			if leftover.MatchString(q) {
				t.Errorf("panel %q: a variable is left in %s", p.Title, q)
			}
		}
		for _, s := range p.Series {
			if s.Name == "" || strings.Contains(s.Name, "{{") {
				t.Errorf("panel %q: series name %q", p.Title, s.Name)
			}
			if len(s.Values) != len(p.Times) || s.Values[0] == nil || *s.Values[0] != 1 || s.Values[len(s.Values)-1] != nil {
				t.Errorf("panel %q: series %q not aligned on the time axis (NaN must be a gap)", p.Title, s.Name)
			}
		}
		targets += len(w.Targets)
	}
	if got := queried(); len(got) != targets {
		t.Errorf("Prometheus saw %d queries for %d targets", len(got), targets)
	}
	if len(v.Rules) != 1 {
		t.Errorf("rules: %v", v.Rules)
	}
}

func TestGrafanaIntervals(t *testing.T) {
	t.Parallel()
	at := time.Unix(1_800_000_000, 0)
	for _, c := range []struct {
		span, scrape     time.Duration
		px               int
		step, rateWindow time.Duration
	}{
		{150 * time.Second, 2 * time.Second, 600, 2 * time.Second, 8 * time.Second},
		{time.Hour, 2 * time.Second, 600, 6 * time.Second, 8 * time.Second},
		{time.Hour, 15 * time.Second, 600, 15 * time.Second, time.Minute},
		{24 * time.Hour, 15 * time.Second, 600, 144 * time.Second, 159 * time.Second},
	} {
		w := window{From: at.Add(-c.span), To: at, Scrape: c.scrape, WidthPx: c.px}
		if w.step() != c.step || w.rateInterval() != c.rateWindow {
			t.Errorf("%v over %d px, scrape %v: $__interval %v, $__rate_interval %v; want %v, %v",
				c.span, c.px, c.scrape, w.step(), w.rateInterval(), c.step, c.rateWindow)
		}
	}
	got, err := interpolate(`rate(x{pool=~"$pool", ds="${datasource}"}[$__rate_interval])`,
		map[string]string{"pool": ".*", "datasource": "prometheus"},
		window{From: at.Add(-time.Hour), To: at, Scrape: 15 * time.Second, WidthPx: 600})
	if want := `rate(x{pool=~".*", ds="prometheus"}[60s])`; err != nil || got != want {
		t.Errorf("interpolate: %q, %v; want %q", got, err, want)
	}
	if _, err := interpolate(`x{a="$nope"}`, nil, window{Scrape: time.Second}); err == nil {
		t.Error("an unknown variable must be an error")
	}
}

func TestLegendName(t *testing.T) {
	t.Parallel()
	labels := map[string]string{"__name__": "tokenlease_tokens", "pool": "eu", "state": "free"}
	for format, want := range map[string]string{
		"{{pool}} {{state}}": "eu free",
		"lapsed {{ pool }}":  "lapsed eu",
		"{{instance}} p99":   "p99",
		"":                   `tokenlease_tokens{pool="eu", state="free"}`,
	} {
		if got := legendName(format, labels); got != want {
			t.Errorf("legendName(%q) = %q, want %q", format, got, want)
		}
	}
}

// TestPageLoadsOnlyEmbeddedAssets: every script and stylesheet the page
// names is embedded (the page needs no network).
func TestPageLoadsOnlyEmbeddedAssets(t *testing.T) {
	t.Parallel()
	html, err := fs.ReadFile(page, "page/index.html")
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(string(html), -1)
	if len(refs) < 2 {
		t.Fatalf("found %d assets in index.html", len(refs))
	}
	for _, m := range refs {
		if strings.Contains(m[1], "//") {
			t.Errorf("index.html loads %s from another host", m[1])
		} else if _, err := fs.Stat(page, "page/"+m[1]); err != nil {
			t.Errorf("index.html loads %s: %v", m[1], err)
		}
	}
}
