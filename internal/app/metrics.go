package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/tokenlease/tokenlease/internal/metrics"
)

// listenMetrics opens METRICS_ADDR (empty: no metrics) and points the
// scrape-time metrics at this pod: occupancy from the counter slots, the
// connection pool's statistics, SWEEP_INTERVAL.
func (a *App) listenMetrics() error {
	if a.Config.MetricsAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", a.Config.MetricsAddr)
	if err != nil {
		return fmt.Errorf("METRICS_ADDR: %w", err)
	}
	a.metricsLn = ln
	metrics.SetOccupancySource(a.occupancy)
	metrics.SetDBPoolSource(a.Pool.Stat)
	metrics.SetSweepInterval(time.Duration(a.Config.SweepInterval))
	return nil
}

// occupancy reads tokenlease_tokens per pool from the counter slots (Pools
// sums each pool's slots; it never counts rows).
func (a *App) occupancy(ctx context.Context) ([]metrics.Occupancy, error) {
	pools, err := a.Service.Pools(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]metrics.Occupancy, len(pools))
	for i, p := range pools {
		out[i] = metrics.Occupancy{Pool: p.Name, Free: p.Free, Assigned: p.Assigned}
	}
	return out, nil
}

// MetricsURL is where this pod serves GET /metrics once started; "" when
// METRICS_ADDR is empty.
func (a *App) MetricsURL() string {
	if a.metricsLn == nil {
		return ""
	}
	return "http://" + a.metricsLn.Addr().String() + "/metrics"
}

// serveMetrics answers GET /metrics until stop is called, which waits up to
// grace for scrapes in flight.
func (a *App) serveMetrics() (stop func(ctx context.Context)) {
	if a.metricsLn == nil {
		return func(context.Context) {}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(a.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("metrics listener stopped", "error", err)
		}
	}()
	return func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		<-done
	}
}
