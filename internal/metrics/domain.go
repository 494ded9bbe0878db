package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Batch kinds: the statements the batcher coalesces.
const (
	BatchAssign    = "assign"
	BatchUnblock   = "unblock"
	BatchKeepalive = "keepalive"
)

var (
	leasesLapsed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameLeasesLapsed,
		Help: "Leases whose TTL passed before an unblock, freed by a sweep.",
	}, []string{"pool"})
	tokensExpired = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameTokensExpired,
		Help: "Tokens that died (no keep-alive within KEEPALIVE_TTL), removed by a sweep.",
	}, []string{"pool"})
	waiters = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: NameWaiters,
		Help: "Assigns waiting (assign?wait=) for a free token on this pod.",
	}, []string{"pool"})
	eventStreams = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: NameEventStreams,
		Help: "Open event streams (SSE) on this pod.",
	})
	batchSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    NameBatchSize,
		Help:    "Requests coalesced into one statement, by kind.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 .. 1024
	}, []string{"kind"})
	eventReaderLag = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: NameEventReaderLag,
		Help: "Age of the newest change the event reader has delivered, when changes are pending; 0 when it is caught up.",
	})
	sweepDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    NameSweepDuration,
		Help:    "Time one sweep run took (lapsed leases, then dead tokens).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	sweepInterval = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: NameSweepInterval,
		Help: "SWEEP_INTERVAL: how often sweeps are scheduled (alerts compare sweep durations with it).",
	})
)

// poolCounters caches the label children of one pool.
type poolCounters struct {
	lapsed, expired prometheus.Counter
	waiters         prometheus.Gauge
}

var pools sync.Map // pool name -> *poolCounters

func forPool(pool string) *poolCounters {
	if pc, ok := pools.Load(pool); ok {
		return pc.(*poolCounters)
	}
	pc, _ := pools.LoadOrStore(pool, &poolCounters{
		lapsed:  leasesLapsed.WithLabelValues(pool),
		expired: tokensExpired.WithLabelValues(pool),
		waiters: waiters.WithLabelValues(pool),
	})
	return pc.(*poolCounters)
}

// LeaseLapsed counts n leases of pool that a sweep freed after their TTL.
func LeaseLapsed(pool string, n int) {
	if n > 0 {
		forPool(pool).lapsed.Add(float64(n))
	}
}

// TokensExpired counts n tokens of pool that a sweep removed as dead.
func TokensExpired(pool string, n int) {
	if n > 0 {
		forPool(pool).expired.Add(float64(n))
	}
}

// Waiters is the gauge of pool's waiting assigns: Inc when one starts to
// wait, Dec when it ends, whatever the outcome.
func Waiters(pool string) prometheus.Gauge { return forPool(pool).waiters }

// EventStreams is the gauge of open event streams: Inc on open, Dec on close.
func EventStreams() prometheus.Gauge { return eventStreams }

var batchKinds = map[string]prometheus.Observer{
	BatchAssign:    batchSize.WithLabelValues(BatchAssign),
	BatchUnblock:   batchSize.WithLabelValues(BatchUnblock),
	BatchKeepalive: batchSize.WithLabelValues(BatchKeepalive),
}

// BatchSize records that one statement of kind served n requests.
func BatchSize(kind string, n int) {
	obs, ok := batchKinds[kind]
	if !ok {
		obs = batchSize.WithLabelValues(OtherLabel)
	}
	obs.Observe(float64(n))
}

// EventReaderLag sets how far behind the event reader is.
func EventReaderLag(d time.Duration) { eventReaderLag.Set(d.Seconds()) }

// SweepDuration records one sweep run.
func SweepDuration(d time.Duration) { sweepDuration.Observe(d.Seconds()) }

// SetSweepInterval publishes SWEEP_INTERVAL, once at start-up.
func SetSweepInterval(d time.Duration) { sweepInterval.Set(d.Seconds()) }
