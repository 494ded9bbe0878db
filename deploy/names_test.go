package deploy

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tokenlease/tokenlease/internal/metrics"
)

var metricIdent = regexp.MustCompile(`\btokenlease_[a-zA-Z0-9_]*`)

// unknownMetrics returns the tokenlease_* names in a PromQL expression that
// the service does not export. Regexp, not a PromQL parser: the metric names
// are the only thing checked, and Prometheus's parser would cost a large
// dependency; promtool checks the syntax.
func unknownMetrics(expr string) []string {
	var unknown []string
	for _, id := range metricIdent.FindAllString(expr, -1) {
		if !exported(id) {
			unknown = append(unknown, id)
		}
	}
	return unknown
}

func exported(id string) bool {
	if slices.Contains(metrics.Names(), id) {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(id, suffix); ok && slices.Contains(metrics.Histograms(), base) {
			return true
		}
	}
	return false
}

func TestUnknownMetricsFindsMisspelledNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum(rate(tokenlease_http_requests_total{code=~"5.."}[5m]))`, nil},
		{`histogram_quantile(0.99, sum by (le) (rate(tokenlease_http_request_duration_seconds_bucket[5m])))`, nil},
		{`up{job="tokenlease"} == 0`, nil},
		{`tokenlease_token{state="free"}`, []string{"tokenlease_token"}},
		{`rate(tokenlease_tokens_bucket[5m])`, []string{"tokenlease_tokens_bucket"}}, // a gauge has no buckets
		{`rate(tokenlease_sweep_duration_seconds_count[5m])`, nil},
		{`tokenlease_waiters_total`, []string{"tokenlease_waiters_total"}},
	} {
		if got := unknownMetrics(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("unknownMetrics(%q) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}
