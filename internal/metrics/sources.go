package metrics

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Occupancy is one pool's live tokens by state, as the counters say.
type Occupancy struct {
	Pool     string
	Free     int64
	Assigned int64
}

// OccupancyFunc reads every pool's occupancy. It must sum the counter slots
// (a cost independent of the pool sizes), never count rows.
type OccupancyFunc func(context.Context) ([]Occupancy, error)

// occupancyTimeout bounds the database read a scrape makes, well under
// Prometheus's default scrape timeout of 10 s.
const occupancyTimeout = 3 * time.Second

var (
	occupancySource atomic.Pointer[OccupancyFunc]
	dbStatSource    atomic.Pointer[func() *pgxpool.Stat]
)

// SetOccupancySource installs the function scrapes read occupancy from; nil
// removes it. The last pod to start in a process wins (tests start several).
func SetOccupancySource(f OccupancyFunc) {
	if f == nil {
		occupancySource.Store(nil)
		return
	}
	occupancySource.Store(&f)
}

// SetDBPoolSource installs the function scrapes read the connection pool's
// statistics from (e.g. pool.Stat); nil removes it.
func SetDBPoolSource(f func() *pgxpool.Stat) {
	if f == nil {
		dbStatSource.Store(nil)
		return
	}
	dbStatSource.Store(&f)
}

var (
	tokensDesc = prometheus.NewDesc(NameTokens, "Live tokens by pool and state (free, assigned), from the counters.", []string{"pool", "state"}, nil)
	dbUpDesc   = prometheus.NewDesc(NameDBUp, "1 when this scrape's read of the counters from the database succeeded, else 0.", nil, nil)
)

// occupancyCollector reads occupancy at scrape time, so the hot path pays
// nothing for tokenlease_tokens and a scrape doubles as a database probe.
type occupancyCollector struct{}

var occupancy occupancyCollector

func (occupancyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- tokensDesc
	ch <- dbUpDesc
}

func (occupancyCollector) Collect(ch chan<- prometheus.Metric) {
	src := occupancySource.Load()
	if src == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), occupancyTimeout)
	defer cancel()
	occ, err := (*src)(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(dbUpDesc, prometheus.GaugeValue, 0)
		ch <- prometheus.NewInvalidMetric(tokensDesc, fmt.Errorf("read occupancy: %w", err))
		return
	}
	ch <- prometheus.MustNewConstMetric(dbUpDesc, prometheus.GaugeValue, 1)
	for _, o := range occ {
		ch <- prometheus.MustNewConstMetric(tokensDesc, prometheus.GaugeValue, float64(o.Free), o.Pool, "free")
		ch <- prometheus.MustNewConstMetric(tokensDesc, prometheus.GaugeValue, float64(o.Assigned), o.Pool, "assigned")
	}
}

type poolStat struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*pgxpool.Stat) float64
}

func gauge(name, help string, v func(*pgxpool.Stat) int32) poolStat {
	return poolStat{prometheus.NewDesc(name, help, nil, nil), prometheus.GaugeValue, func(s *pgxpool.Stat) float64 { return float64(v(s)) }}
}

func counter(name, help string, v func(*pgxpool.Stat) float64) poolStat {
	return poolStat{prometheus.NewDesc(name, help, nil, nil), prometheus.CounterValue, v}
}

func count(v func(*pgxpool.Stat) int64) func(*pgxpool.Stat) float64 {
	return func(s *pgxpool.Stat) float64 { return float64(v(s)) }
}

func seconds(v func(*pgxpool.Stat) time.Duration) func(*pgxpool.Stat) float64 {
	return func(s *pgxpool.Stat) float64 { return v(s).Seconds() }
}

// dbPoolCollector turns pgxpool's own statistics into metrics at scrape time.
type dbPoolCollector []poolStat

var dbPool = dbPoolCollector{
	gauge(NameDBPoolAcquired, "Connections currently acquired from the pool.", (*pgxpool.Stat).AcquiredConns),
	gauge(NameDBPoolIdle, "Idle connections in the pool.", (*pgxpool.Stat).IdleConns),
	gauge(NameDBPoolConstructing, "Connections being established.", (*pgxpool.Stat).ConstructingConns),
	gauge(NameDBPoolTotal, "Connections in the pool (acquired, idle and constructing).", (*pgxpool.Stat).TotalConns),
	gauge(NameDBPoolMax, "The pool's maximum size.", (*pgxpool.Stat).MaxConns),
	counter(NameDBPoolAcquires, "Successful acquires from the pool.", count((*pgxpool.Stat).AcquireCount)),
	counter(NameDBPoolAcquireWait, "Total time spent in successful acquires.", seconds((*pgxpool.Stat).AcquireDuration)),
	counter(NameDBPoolEmptyAcquires, "Acquires that had to wait because no connection was idle.", count((*pgxpool.Stat).EmptyAcquireCount)),
	counter(NameDBPoolEmptyWait, "Total time acquires waited because no connection was idle.", seconds((*pgxpool.Stat).EmptyAcquireWaitTime)),
	counter(NameDBPoolCanceled, "Acquires canceled by their context.", count((*pgxpool.Stat).CanceledAcquireCount)),
	counter(NameDBPoolNewConns, "Connections opened.", count((*pgxpool.Stat).NewConnsCount)),
	counter(NameDBPoolLifetimeKills, "Connections closed for exceeding their maximum lifetime.", count((*pgxpool.Stat).MaxLifetimeDestroyCount)),
	counter(NameDBPoolIdleKills, "Connections closed for exceeding their maximum idle time.", count((*pgxpool.Stat).MaxIdleDestroyCount)),
}

func (c dbPoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range c {
		ch <- s.desc
	}
}

func (c dbPoolCollector) Collect(ch chan<- prometheus.Metric) {
	src := dbStatSource.Load()
	if src == nil {
		return
	}
	st := (*src)()
	for _, s := range c {
		ch <- prometheus.MustNewConstMetric(s.desc, s.kind, s.value(st))
	}
}
