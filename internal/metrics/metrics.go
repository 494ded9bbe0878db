// Package metrics owns every Prometheus metric the service exports (DESIGN.md
// section 9): each is defined once, on a registry this package owns, and
// recorded through small functions that the hot path can call cheaply (label
// children are bound once and cached). Occupancy and the database pool's
// statistics are read at scrape time from functions the pod installs, so a
// scrape never counts rows and the hot path pays nothing for them.
//
// Label values are bounded: routes are templates, codes are HTTP statuses,
// kinds are a fixed set, pools are the deployment's pool names. A route or a
// kind outside its bound is recorded as "other".
package metrics

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric family names, exactly as scraped (histograms add _bucket, _sum and
// _count series to their family name).
const (
	NameTokens              = "tokenlease_tokens"
	NameHTTPRequests        = "tokenlease_http_requests_total"
	NameHTTPDuration        = "tokenlease_http_request_duration_seconds"
	NameLeasesLapsed        = "tokenlease_leases_lapsed_total"
	NameTokensExpired       = "tokenlease_tokens_expired_total"
	NameWaiters             = "tokenlease_waiters"
	NameEventStreams        = "tokenlease_event_streams"
	NameBatchSize           = "tokenlease_batch_size"
	NameEventReaderLag      = "tokenlease_event_reader_lag_seconds"
	NameSweepDuration       = "tokenlease_sweep_duration_seconds"
	NameSweepInterval       = "tokenlease_sweep_interval_seconds"
	NameDBUp                = "tokenlease_db_up"
	NameDBPoolAcquired      = "tokenlease_db_pool_acquired_conns"
	NameDBPoolIdle          = "tokenlease_db_pool_idle_conns"
	NameDBPoolConstructing  = "tokenlease_db_pool_constructing_conns"
	NameDBPoolTotal         = "tokenlease_db_pool_total_conns"
	NameDBPoolMax           = "tokenlease_db_pool_max_conns"
	NameDBPoolAcquires      = "tokenlease_db_pool_acquires_total"
	NameDBPoolAcquireWait   = "tokenlease_db_pool_acquire_duration_seconds_total"
	NameDBPoolEmptyAcquires = "tokenlease_db_pool_empty_acquires_total"
	NameDBPoolEmptyWait     = "tokenlease_db_pool_empty_acquire_wait_seconds_total"
	NameDBPoolCanceled      = "tokenlease_db_pool_canceled_acquires_total"
	NameDBPoolNewConns      = "tokenlease_db_pool_new_conns_total"
	NameDBPoolLifetimeKills = "tokenlease_db_pool_max_lifetime_destroys_total"
	NameDBPoolIdleKills     = "tokenlease_db_pool_max_idle_destroys_total"
)

// Names lists every tokenlease_* metric family this package exports. The Go
// runtime (go_*) and process (process_*) families come on top; alerts and
// dashboards may use those and Prometheus's own `up` as well.
func Names() []string {
	return []string{
		NameTokens, NameHTTPRequests, NameHTTPDuration, NameLeasesLapsed,
		NameTokensExpired, NameWaiters, NameEventStreams, NameBatchSize,
		NameEventReaderLag, NameSweepDuration, NameSweepInterval, NameDBUp,
		NameDBPoolAcquired, NameDBPoolIdle, NameDBPoolConstructing, NameDBPoolTotal,
		NameDBPoolMax, NameDBPoolAcquires, NameDBPoolAcquireWait, NameDBPoolEmptyAcquires,
		NameDBPoolEmptyWait, NameDBPoolCanceled, NameDBPoolNewConns,
		NameDBPoolLifetimeKills, NameDBPoolIdleKills,
	}
}

// Histograms lists the families of Names that are histograms: queries name
// them with a _bucket, _sum or _count suffix.
func Histograms() []string {
	return []string{NameHTTPDuration, NameBatchSize, NameSweepDuration}
}

// registry holds every metric of the process; nothing registers on
// Prometheus's global default registry, so a library that does cannot leak
// unbounded series into our scrape.
var registry = prometheus.NewRegistry()

func init() {
	registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		httpRequests, httpDuration, leasesLapsed, tokensExpired, waiters,
		eventStreams, batchSize, eventReaderLag, sweepDuration, sweepInterval,
		occupancy, dbPool,
	)
}

// Handler serves the registry in the Prometheus exposition formats. A
// collector that fails (the database is down) is logged and left out; the
// rest of the scrape is still served, with tokenlease_db_up at 0.
func Handler() http.Handler {
	return promhttp.HandlerFor(registry, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Gatherer exposes the registry to tests and tools that read it in-process.
func Gatherer() prometheus.Gatherer { return registry }

type slogPrinter struct{}

func (slogPrinter) Println(v ...any) {
	slog.Warn("metrics: scrape", "error", slogArgs(v))
}

func slogArgs(v []any) any {
	if len(v) == 1 {
		return v[0]
	}
	return v
}
