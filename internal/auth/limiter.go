package auth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter keeps a token bucket per caller on this pod: rate requests/s
// (the caller's own RateLimit wins over the pod's default), burst twice
// that. Its memory is bounded: buckets idle for IdleAfter are evicted, and
// past MaxCallers the idlest go first.
type Limiter struct {
	def       float64
	idleAfter time.Duration
	max       int

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim      *rate.Limiter
	perSec   float64
	lastSeen time.Time
}

// LimiterConfig tunes a Limiter; zero values take the defaults.
type LimiterConfig struct {
	Default    float64       // requests/s for callers without their own; 0: none
	IdleAfter  time.Duration // default 1m
	MaxCallers int           // default 100000
}

// NewLimiter returns a limiter.
func NewLimiter(cfg LimiterConfig) *Limiter {
	if cfg.IdleAfter <= 0 {
		cfg.IdleAfter = time.Minute
	}
	if cfg.MaxCallers <= 0 {
		cfg.MaxCallers = 100000
	}
	return &Limiter{def: cfg.Default, idleAfter: cfg.IdleAfter, max: cfg.MaxCallers, buckets: make(map[string]*bucket)}
}

// Allow takes one request from caller's bucket; own is the caller's own
// rate (0: the default). It returns a *RateLimitedError when the bucket is
// empty.
func (l *Limiter) Allow(caller string, own float64) error {
	perSec := l.def
	if own > 0 {
		perSec = own
	}
	if perSec <= 0 {
		return nil
	}
	now := time.Now()
	l.mu.Lock()
	b := l.buckets[caller]
	if b == nil || b.perSec != perSec {
		l.makeRoom(now)
		b = &bucket{lim: rate.NewLimiter(rate.Limit(perSec), burstOf(perSec)), perSec: perSec}
		l.buckets[caller] = b
	}
	b.lastSeen = now
	r := b.lim.ReserveN(now, 1)
	delay := r.DelayFrom(now)
	if delay > 0 {
		r.CancelAt(now)
	}
	l.mu.Unlock()
	if delay > 0 {
		return &RateLimitedError{RetryAfter: delay}
	}
	return nil
}

func burstOf(perSec float64) int { return max(1, int(2*perSec)) }

// makeRoom evicts idle buckets (at most once a second, or when full) and,
// when still full, the least recently seen one. The caller holds l.mu.
func (l *Limiter) makeRoom(now time.Time) {
	if len(l.buckets) < l.max && now.Sub(l.lastSweep) < time.Second {
		return
	}
	l.lastSweep = now
	var idlest string
	var idlestSeen time.Time
	for k, b := range l.buckets {
		if now.Sub(b.lastSeen) >= l.idleAfter {
			delete(l.buckets, k)
			continue
		}
		if idlest == "" || b.lastSeen.Before(idlestSeen) {
			idlest, idlestSeen = k, b.lastSeen
		}
	}
	if len(l.buckets) >= l.max {
		delete(l.buckets, idlest)
	}
}

// Len returns how many callers have a bucket.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
