package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenlease/tokenlease/db/authdb"
)

// Keys verifies API keys from a per-pod cache of their hashes, so that the
// hot path never waits for the database. A background loop re-reads the keys
// changed since its previous read (one indexed query on api_keys.xid) every
// RefreshEvery, so a key created, revoked or expired on any pod counts on
// every pod within about that time; last use is recorded off the hot path,
// at most once a minute per key.
type Keys struct {
	q            *authdb.Queries
	refreshEvery time.Duration
	touchEvery   time.Duration
	logger       *slog.Logger

	mu      sync.RWMutex
	byHash  map[[sha256.Size]byte]*cachedKey
	since   int64         // the horizon of the last read
	skew    time.Duration // database clock minus this pod's clock
	refresh sync.Mutex    // one read at a time

	stop chan struct{}
	done chan struct{}
}

type cachedKey struct {
	id        int64
	hash      [sha256.Size]byte
	principal Principal
	expiresAt *time.Time
	used      atomic.Bool // since the last flush
}

// KeysConfig tunes the cache; zero values take the defaults.
type KeysConfig struct {
	RefreshEvery time.Duration // default 500ms: revocation counts within 2 s
	TouchEvery   time.Duration // default 1m: last_used_at flushes
	Logger       *slog.Logger
}

// NewKeys returns a cache over pool; Load or Start fills it.
func NewKeys(pool *pgxpool.Pool, cfg KeysConfig) *Keys {
	if cfg.RefreshEvery <= 0 {
		cfg.RefreshEvery = 500 * time.Millisecond
	}
	if cfg.TouchEvery <= 0 {
		cfg.TouchEvery = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Keys{
		q: authdb.New(pool), refreshEvery: cfg.RefreshEvery, touchEvery: cfg.TouchEvery, logger: cfg.Logger,
		byHash: make(map[[sha256.Size]byte]*cachedKey),
	}
}

// Verify returns the principal of a live key. It reads only the cache.
func (k *Keys) Verify(secret string) (Principal, error) {
	if !LooksLikeKey(secret) {
		return Principal{}, ErrUnauthenticated
	}
	h := hashKey(secret)
	k.mu.RLock()
	e := k.byHash[h]
	skew := k.skew
	k.mu.RUnlock()
	// The map finds the entry by hash; the comparison that decides is
	// constant-time, so its timing says nothing about the stored hash.
	if e == nil || subtle.ConstantTimeCompare(e.hash[:], h[:]) != 1 {
		return Principal{}, ErrUnauthenticated
	}
	if e.expiresAt != nil && !time.Now().Add(skew).Before(*e.expiresAt) {
		return Principal{}, ErrUnauthenticated
	}
	if !e.used.Load() {
		e.used.Store(true)
	}
	return e.principal, nil
}

// Refresh reads the keys changed since the previous read into the cache.
func (k *Keys) Refresh(ctx context.Context) error {
	k.refresh.Lock()
	defer k.refresh.Unlock()
	k.mu.RLock()
	since := k.since
	k.mu.RUnlock()
	local := time.Now()
	rows, err := k.q.KeysChangedSince(ctx, since)
	if err != nil {
		return fmt.Errorf("refresh API keys: %w", err)
	}
	local = local.Add(time.Since(local) / 2)
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, r := range rows {
		k.since = r.Horizon
		k.skew = r.DbNow.Sub(local)
		if r.ID == nil {
			continue // nothing changed
		}
		var h [sha256.Size]byte
		copy(h[:], r.KeyHash)
		if r.RevokedAt != nil {
			delete(k.byHash, h)
			continue
		}
		if old := k.byHash[h]; old != nil {
			continue // unchanged (re-read while the horizon lags)
		}
		e := &cachedKey{id: *r.ID, hash: h, expiresAt: r.ExpiresAt, principal: Principal{
			Name: *r.Name, Role: Role(*r.Role), Pools: r.Pools, Source: "key",
		}}
		if r.RateLimit.Valid {
			e.principal.RateLimit = r.RateLimit.Float64
		}
		k.byHash[h] = e
	}
	return nil
}

// Start loads the cache, then refreshes it and flushes last use in the
// background until Close.
func (k *Keys) Start(ctx context.Context) error {
	if err := k.Refresh(ctx); err != nil {
		return err
	}
	k.stop, k.done = make(chan struct{}), make(chan struct{})
	go k.loop(context.WithoutCancel(ctx))
	return nil
}

func (k *Keys) loop(ctx context.Context) {
	defer close(k.done)
	refresh := time.NewTicker(k.refreshEvery)
	defer refresh.Stop()
	touch := time.NewTicker(k.touchEvery)
	defer touch.Stop()
	failing := false
	for {
		select {
		case <-k.stop:
			k.flushUse(ctx)
			return
		case <-refresh.C:
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := k.Refresh(rctx)
			cancel()
			// Log a failing refresh once, not every tick; the cache keeps
			// serving what it knows.
			if err != nil && !failing {
				k.logger.Warn("API key cache refresh failing; serving the keys last read", "error", err)
			} else if err == nil && failing {
				k.logger.Info("API key cache refresh works again")
			}
			failing = err != nil
		case <-touch.C:
			k.flushUse(ctx)
		}
	}
}

// flushUse writes last_used_at of the keys used since the previous flush.
func (k *Keys) flushUse(ctx context.Context) {
	var ids []int64
	k.mu.RLock()
	for _, e := range k.byHash {
		if e.used.Load() {
			e.used.Store(false)
			ids = append(ids, e.id)
		}
	}
	k.mu.RUnlock()
	if len(ids) == 0 {
		return
	}
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := k.q.TouchKeys(tctx, ids); err != nil {
		k.logger.Warn("recording API keys' last use failed", "keys", len(ids), "error", err)
	}
}

// Close stops the background loop after a last flush of last use.
func (k *Keys) Close() {
	if k.stop == nil {
		return
	}
	select {
	case <-k.stop:
	default:
		close(k.stop)
	}
	<-k.done
}
