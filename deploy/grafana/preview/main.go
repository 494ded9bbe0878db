// Command preview draws the Grafana dashboard deploy/grafana/tokenlease.json
// without Grafana: it drives a scripted workload against a running tokend,
// then serves a page that lays the dashboard's panels out by their gridPos
// and draws each from its own PromQL targets (query_range against a real
// Prometheus that scrapes that tokend; template variables, $__interval and
// $__rate_interval substituted as Grafana does, legend formats, units,
// stacking), and screenshots the page with headless Chromium.
//
// deploy/grafana/preview/run.sh (make dashboard-preview) starts tokend on
// a throwaway database and Prometheus, and runs it.
package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

//go:embed page
var page embed.FS

// Layout of Grafana's grid: 24 columns, 30 px rows, 8 px gaps.
const (
	pageWidth = 1400
	rowHeight = 30
	gridGap   = 8
	header    = 64 // the page's title bar and variables, above the grid
)

const chromium = "/usr/bin/chromium"

func main() {
	var (
		dashPath   = flag.String("dashboard", "deploy/grafana/tokenlease.json", "the dashboard JSON")
		promURL    = flag.String("prometheus", "http://127.0.0.1:9090", "Prometheus that scrapes tokend")
		tokendURL  = flag.String("tokend", "", "tokend's HTTP address (empty: no workload)")
		key        = flag.String("key", os.Getenv("PREVIEW_ADMIN_KEY"), "an admin key of tokend (default $PREVIEW_ADMIN_KEY)")
		duration   = flag.Duration("duration", 150*time.Second, "how long the workload runs")
		maxStreams = flag.Int("max-streams", 4, "tokend's MAX_STREAMS (the workload opens one more to show a 503)")
		scrape     = flag.Duration("scrape-interval", 2*time.Second, "Prometheus' scrape interval (Grafana's min interval)")
		since      = flag.String("from", "", "start of the time range, RFC 3339 (default: now, when the workload starts)")
		out        = flag.String("out", "docs/img/dashboard.png", "where the screenshot goes")
		serve      = flag.String("serve", "", "serve the page on this address until interrupted, instead of screenshotting it")
		freePorts  = flag.Int("free-ports", 0, "print this many free loopback ports and exit (for run.sh)")
	)
	flag.Parse()
	log.SetFlags(log.Ltime)
	if *freePorts > 0 {
		printFreePorts(*freePorts)
		return
	}

	dash, err := loadDashboard(*dashPath)
	if err != nil {
		log.Fatal(err)
	}
	from := time.Now()
	if *since != "" {
		if from, err = time.Parse(time.RFC3339, *since); err != nil {
			log.Fatalf("-from: %v", err)
		}
	}
	ctx := context.Background()
	if *tokendURL != "" {
		a := &api{base: *tokendURL, key: *key, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}}, counts: map[string]int{}}
		log.Printf("workload: %s against %s", *duration, *tokendURL)
		if err := workload(ctx, a, *duration, *maxStreams); err != nil {
			log.Fatalf("workload: %v", err)
		}
		log.Printf("workload done; answers:")
		a.logCounts()
		time.Sleep(2 * *scrape) // the last scrape and rule evaluation
	}

	prom := prometheus{URL: *promURL, Client: &http.Client{Timeout: 30 * time.Second}}
	to := time.Now()
	if *serve != "" {
		to = time.Time{} // follow the clock
	}
	h := handler(dash, prom, from, to, *scrape)
	if *serve != "" {
		log.Printf("serving the preview on http://%s/", *serve)
		log.Fatal(http.ListenAndServe(*serve, h))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	defer srv.Close()

	png, shotErr := screenshot(ctx, "http://"+ln.Addr().String()+"/", pageHeight(dash))
	if len(png) > 0 {
		if err := os.WriteFile(*out, png, 0o644); err != nil {
			log.Fatal(err)
		}
		log.Printf("wrote %s (%d KB)", *out, len(png)/1024)
	}
	if shotErr != nil {
		log.Fatal(shotErr)
	}
}

func pageHeight(d dashboard) int {
	rows := 0
	for _, p := range d.panels() {
		rows = max(rows, p.GridPos.Y+p.GridPos.H)
	}
	return header + rows*(rowHeight+gridGap) + gridGap
}

// plotWidth is a panel's width in pixels, Grafana's max data points.
func plotWidth(p panelModel) int {
	col := float64(pageWidth-gridGap) / 24
	return int(col*float64(p.GridPos.W)) - gridGap - 60
}

// view is what GET /api/dashboard answers: the panels with their data.
type view struct {
	Title     string      `json:"title"`
	Variables []varView   `json:"variables"`
	From      time.Time   `json:"from"`
	To        time.Time   `json:"to"`
	Rules     []string    `json:"rules"`  // alerting rules Prometheus loaded
	Firing    []string    `json:"firing"` // of which firing or pending at To
	Panels    []panelData `json:"panels"`
	Layout    layout      `json:"layout"`
}

type varView struct {
	Label, Text string
}

type layout struct {
	Width, RowHeight, Gap, Header int
}

func handler(dash dashboard, prom prometheus, from, to time.Time, scrape time.Duration) http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(page, "page")
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /api/dashboard", func(w http.ResponseWriter, r *http.Request) {
		end := to
		if end.IsZero() {
			end = time.Now()
		}
		v := view{Title: dash.Title, From: from, To: end,
			Layout: layout{Width: pageWidth, RowHeight: rowHeight, Gap: gridGap, Header: header}}
		for _, tv := range dash.Templating.List {
			if tv.Type == "datasource" {
				continue
			}
			v.Variables = append(v.Variables, varView{Label: cmp(tv.Label, tv.Name), Text: fmt.Sprint(tv.Current.Text)})
		}
		vars := dash.varValues()
		for _, p := range dash.panels() {
			win := window{From: from, To: end, Scrape: scrape, WidthPx: plotWidth(p)}
			v.Panels = append(v.Panels, render(r.Context(), prom, p, vars, win))
		}
		v.Rules, v.Firing = alertRules(r.Context(), prom)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	})
	return mux
}

// alertRules lists the alerting rules Prometheus loaded, and those pending
// or firing.
func alertRules(ctx context.Context, prom prometheus) (rules, firing []string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, prom.URL+"/api/v1/rules?type=alert", nil)
	resp, err := prom.Client.Do(req)
	if err != nil {
		return nil, nil
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name  string `json:"name"`
					State string `json:"state"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if json.NewDecoder(resp.Body).Decode(&r) != nil {
		return nil, nil
	}
	for _, g := range r.Data.Groups {
		for _, rule := range g.Rules {
			rules = append(rules, rule.Name)
			if rule.State != "inactive" {
				firing = append(firing, rule.Name+" ("+rule.State+")")
			}
		}
	}
	return rules, firing
}

// screenshot opens the page in headless Chromium, waits until every panel
// is drawn, and captures it.
func screenshot(ctx context.Context, url string, height int) ([]byte, error) {
	if _, err := exec.LookPath(chromium); err != nil {
		return nil, fmt.Errorf("the preview needs Chromium at %s (apt-get install -y chromium): %w", chromium, err)
	}
	dir, err := os.MkdirTemp("", "dashboard-preview-chromium-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(pageWidth, height),
	)
	defer cancelAlloc()
	bctx, cancelCtx := chromedp.NewContext(alloc)
	defer cancelCtx()
	bctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	err = chromedp.Do(bctx,
		chromedp.EmulateViewport(pageWidth, int64(height)),
		chromedp.Navigate(url),
		chromedp.Poll[chromedp.Void](`window.previewDone === true`, chromedp.WithPollingTimeout(60*time.Second)),
	)
	if err != nil {
		return nil, fmt.Errorf("drive the preview page: %w", err)
	}
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		return nil, err
	}
	// Panels with no data or errors: the picture is written, and the run fails.
	problems, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`window.previewProblems`))
	if err != nil {
		return png, err
	}
	if len(problems) > 0 {
		return png, errors.New("the preview page shows problems:\n  " + strings.Join(problems, "\n  "))
	}
	return png, nil
}

// printFreePorts prints n loopback ports the kernel hands out as free.
func printFreePorts(n int) {
	var ports []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		defer ln.Close()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ports = append(ports, port)
	}
	fmt.Println(strings.Join(ports, " "))
}
