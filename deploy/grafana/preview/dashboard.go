package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// dashboard is the part of Grafana's dashboard JSON the preview draws.
type dashboard struct {
	Title      string       `json:"title"`
	Panels     []panelModel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type variable struct {
	Name       string `json:"name"`
	Label      string `json:"label"`
	Type       string `json:"type"`
	IncludeAll bool   `json:"includeAll"`
	AllValue   string `json:"allValue"`
	Current    struct {
		Text  any `json:"text"`
		Value any `json:"value"`
	} `json:"current"`
}

type gridPos struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

type panelModel struct {
	ID          int     `json:"id"`
	Type        string  `json:"type"`
	Title       string  `json:"title"`
	Description string  `json:"description"`
	GridPos     gridPos `json:"gridPos"`
	FieldConfig struct {
		Defaults struct {
			Unit   string `json:"unit"`
			Custom struct {
				Stacking struct {
					Mode string `json:"mode"`
				} `json:"stacking"`
			} `json:"custom"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Options struct {
		Legend struct {
			DisplayMode string `json:"displayMode"`
			Placement   string `json:"placement"`
		} `json:"legend"`
	} `json:"options"`
	Targets []struct {
		RefID        string `json:"refId"`
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
	Panels []panelModel `json:"panels"` // a collapsed row's panels
}

func loadDashboard(path string) (dashboard, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return dashboard{}, err
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return dashboard{}, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// panels are the dashboard's drawable panels, rows' panels included, in
// the JSON's order.
func (d dashboard) panels() []panelModel {
	var out []panelModel
	var walk func([]panelModel)
	walk = func(ps []panelModel) {
		for _, p := range ps {
			if p.Type != "row" {
				out = append(out, p)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// varValues are the template variables at their saved values, as Grafana
// substitutes them into a Prometheus query: "All" becomes allValue (or the
// regex alternation of every value, which the preview does not need).
func (d dashboard) varValues() map[string]string {
	vals := map[string]string{}
	for _, v := range d.Templating.List {
		s := fmt.Sprint(v.Current.Value)
		if s == "$__all" || s == "[$__all]" {
			s = v.AllValue
		}
		if v.Type == "datasource" {
			s = "prometheus"
		}
		vals[v.Name] = s
	}
	return vals
}

// window is a query's time range and Grafana's interval arithmetic for it.
type window struct {
	From, To time.Time
	Scrape   time.Duration // the data source's scrape interval (Grafana's "min interval")
	WidthPx  int           // the panel's plot width: Grafana's max data points
}

// step is Grafana's $__interval: the range over the panel's pixels, at least
// the scrape interval, rounded to whole seconds.
func (w window) step() time.Duration {
	px := max(w.WidthPx, 100)
	s := w.To.Sub(w.From) / time.Duration(px)
	s = max(s, w.Scrape)
	return s.Round(time.Second)
}

// rateInterval is Grafana's $__rate_interval: max($__interval + scrape
// interval, 4 x scrape interval).
func (w window) rateInterval() time.Duration {
	return max(w.step()+w.Scrape, 4*w.Scrape)
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[a-z]+)?\}|\$([A-Za-z0-9_]+)`)

// interpolate substitutes Grafana's built-in and template variables.
func interpolate(expr string, vars map[string]string, w window) (string, error) {
	builtins := map[string]string{
		"__rate_interval": promDuration(w.rateInterval()),
		"__interval":      promDuration(w.step()),
		"__range":         promDuration(w.To.Sub(w.From)),
	}
	var missing []string
	out := varRef.ReplaceAllStringFunc(expr, func(m string) string {
		sub := varRef.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		if v, ok := builtins[name]; ok {
			return v
		}
		if v, ok := vars[name]; ok {
			return v
		}
		missing = append(missing, name)
		return m
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("unknown variables %v in %s", missing, expr)
	}
	return out, nil
}

func promDuration(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

var legendRef = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// legendName is Grafana's series name: the legend format with {{label}}
// replaced (a missing label gives nothing), or the series' labels when the
// format is empty.
func legendName(format string, labels map[string]string) string {
	if format == "" {
		keys := make([]string, 0, len(labels))
		for k := range labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		name := labels["__name__"]
		for _, k := range keys {
			if k != "__name__" {
				parts = append(parts, k+`="`+labels[k]+`"`)
			}
		}
		return name + "{" + strings.Join(parts, ", ") + "}"
	}
	return strings.TrimSpace(legendRef.ReplaceAllStringFunc(format, func(m string) string {
		return labels[legendRef.FindStringSubmatch(m)[1]]
	}))
}

// panelData is what the page draws for one panel.
type panelData struct {
	ID          int       `json:"id"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	Type        string    `json:"type"`
	GridPos     gridPos   `json:"gridPos"`
	Unit        string    `json:"unit"`
	Stacking    string    `json:"stacking"`
	Legend      string    `json:"legend"` // placement; "" hides it
	Queries     []string  `json:"queries"`
	Times       []float64 `json:"times"` // unix seconds, one step apart
	Series      []series  `json:"series"`
	Errors      []string  `json:"errors,omitempty"`
}

type series struct {
	Name   string     `json:"name"`
	Values []*float64 `json:"values"` // nil where Prometheus has no sample (or NaN)
}

// prometheus answers PromQL range queries.
type prometheus struct {
	URL    string
	Client *http.Client
}

type matrix []struct {
	Metric map[string]string `json:"metric"`
	Values [][2]any          `json:"values"`
}

func (p prometheus) queryRange(ctx context.Context, expr string, from, to time.Time, step time.Duration) (matrix, error) {
	q := url.Values{
		"query": {expr},
		"start": {strconv.FormatInt(from.Unix(), 10)},
		"end":   {strconv.FormatInt(to.Unix(), 10)},
		"step":  {promDuration(step)},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/api/v1/query_range", strings.NewReader(q.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     matrix `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("query_range: %s: %w", resp.Status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query_range: %s", r.Error)
	}
	if r.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("query_range: result type %q", r.Data.ResultType)
	}
	return r.Data.Result, nil
}

// render queries every target of a panel over the window and aligns the
// series on one time axis, as Grafana's time series panel shows them.
func render(ctx context.Context, prom prometheus, p panelModel, vars map[string]string, w window) panelData {
	d := panelData{
		ID: p.ID, Title: p.Title, Description: p.Description, Type: p.Type, GridPos: p.GridPos,
		Unit: p.FieldConfig.Defaults.Unit, Stacking: p.FieldConfig.Defaults.Custom.Stacking.Mode,
	}
	if p.Options.Legend.DisplayMode != "hidden" {
		d.Legend = cmp(p.Options.Legend.Placement, "bottom")
	}
	step := w.step()
	from := w.From.Truncate(step)
	to := w.To.Truncate(step)
	for t := from; !t.After(to); t = t.Add(step) {
		d.Times = append(d.Times, float64(t.Unix()))
	}
	index := func(ts float64) int {
		return int(math.Round((ts - d.Times[0]) / step.Seconds()))
	}
	if p.Type != "timeseries" {
		d.Errors = append(d.Errors, fmt.Sprintf("panel type %q is not drawn by the preview", p.Type))
		return d
	}
	for _, tg := range p.Targets {
		expr, err := interpolate(tg.Expr, vars, w)
		if err != nil {
			d.Errors = append(d.Errors, err.Error())
			continue
		}
		d.Queries = append(d.Queries, expr)
		m, err := prom.queryRange(ctx, expr, from, to, step)
		if err != nil {
			d.Errors = append(d.Errors, fmt.Sprintf("%s: %v", tg.RefID, err))
			continue
		}
		var got []series
		for _, s := range m {
			vals := make([]*float64, len(d.Times))
			for _, pt := range s.Values {
				ts, _ := pt[0].(float64)
				str, _ := pt[1].(string)
				v, err := strconv.ParseFloat(str, 64)
				i := index(ts)
				if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || i < 0 || i >= len(vals) {
					continue
				}
				vals[i] = &v
			}
			got = append(got, series{Name: legendName(tg.LegendFormat, s.Metric), Values: vals})
		}
		sort.SliceStable(got, func(i, j int) bool { return got[i].Name < got[j].Name })
		d.Series = append(d.Series, got...)
	}
	return d
}

func cmp(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
