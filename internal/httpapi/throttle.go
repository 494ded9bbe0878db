package httpapi

import (
	"context"
	"log/slog"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// throttledLog logs a kind of failure that comes in floods (every request
// fails the same way while the database is down) at most a few times a
// second; each line says how many it stood for.
type throttledLog struct {
	limit      *rate.Limiter
	suppressed atomic.Int64
}

func newThrottledLog(perSecond float64, burst int) *throttledLog {
	return &throttledLog{limit: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// warn logs msg unless the rate is spent; then it only counts it.
func (l *throttledLog) warn(ctx context.Context, msg string, args ...any) {
	if !l.limit.Allow() {
		l.suppressed.Add(1)
		return
	}
	if n := l.suppressed.Swap(0); n > 0 {
		args = append(args, "suppressed_since_last", n)
	}
	slog.WarnContext(ctx, msg, args...)
}
