package tokens

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokenlease/tokenlease/db"
)

// DefaultPool is the pool that always exists and that the routes without a
// pool (/tokens/...) address.
const DefaultPool = "default"

var poolNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidatePoolName checks a pool name: ^[a-z0-9][a-z0-9_-]{0,62}$.
func ValidatePoolName(name string) error {
	if !poolNameRE.MatchString(name) {
		return invalid("pool name %q must match %s", name, poolNameRE)
	}
	return nil
}

// PoolSettings are a pool's own settings; nil falls back to the
// environment's value (Settings).
type PoolSettings struct {
	LeaseTTL     *time.Duration
	KeepaliveTTL *time.Duration
	MaxLeaseTTL  *time.Duration
	MaxTokens    *int64
}

// PoolInfo is a pool as the API shows it: its effective settings and counts.
type PoolInfo struct {
	Name         string
	LeaseTTL     time.Duration
	KeepaliveTTL time.Duration
	MaxLeaseTTL  time.Duration
	MaxTokens    int64
	Stats
}

// poolRef is a resolved pool: its id for the statements and its effective
// settings.
type poolRef struct {
	id           int32
	name         string
	leaseTTL     time.Duration
	keepaliveTTL time.Duration
	maxLeaseTTL  time.Duration
	maxTokens    int64
}

// refOf applies the environment's settings where the pool has none.
func (s *Service) refOf(id int32, name string, leaseMs, keepMs, maxLeaseMs, maxTokens *int64) poolRef {
	r := poolRef{
		id: id, name: name,
		leaseTTL: s.settings.LeaseTTL, keepaliveTTL: s.settings.KeepaliveTTL,
		maxLeaseTTL: s.settings.MaxLeaseTTL, maxTokens: s.settings.MaxTokens,
	}
	if leaseMs != nil {
		r.leaseTTL = time.Duration(*leaseMs) * time.Millisecond
	}
	if keepMs != nil {
		r.keepaliveTTL = time.Duration(*keepMs) * time.Millisecond
	}
	if maxLeaseMs != nil {
		r.maxLeaseTTL = time.Duration(*maxLeaseMs) * time.Millisecond
	}
	if maxTokens != nil {
		r.maxTokens = *maxTokens
	}
	return r
}

func (r poolRef) info(st Stats) PoolInfo {
	return PoolInfo{
		Name: r.name, LeaseTTL: r.leaseTTL, KeepaliveTTL: r.keepaliveTTL,
		MaxLeaseTTL: r.maxLeaseTTL, MaxTokens: r.maxTokens, Stats: st,
	}
}

// validate checks settings against each other and against the environment
// they fall back to.
func (s *Service) validatePoolSettings(ps PoolSettings) error {
	for _, d := range []struct {
		name string
		v    *time.Duration
		min  time.Duration
	}{
		{"lease_ttl", ps.LeaseTTL, MinLeaseTTL},
		{"max_lease_ttl", ps.MaxLeaseTTL, MinLeaseTTL},
		{"keepalive_ttl", ps.KeepaliveTTL, MinLeaseTTL},
	} {
		if d.v != nil && (*d.v < d.min || *d.v > maxPoolTTL) {
			return invalid("%s must lie between %s and %s", d.name, d.min, maxPoolTTL)
		}
	}
	if ps.MaxTokens != nil && *ps.MaxTokens < 1 {
		return invalid("max_tokens must be a positive integer")
	}
	r := s.refOf(0, "", msPtr(ps.LeaseTTL), msPtr(ps.KeepaliveTTL), msPtr(ps.MaxLeaseTTL), ps.MaxTokens)
	if r.leaseTTL > r.maxLeaseTTL {
		return invalid("lease_ttl (%s) must not exceed max_lease_ttl (%s)", r.leaseTTL, r.maxLeaseTTL)
	}
	return nil
}

// maxPoolTTL bounds a pool's durations: a year is longer than any lease or
// keep-alive period anyone means, and keeps the millisecond arithmetic far
// from overflow.
const maxPoolTTL = 365 * 24 * time.Hour

func msPtr(d *time.Duration) *int64 {
	if d == nil {
		return nil
	}
	ms := d.Milliseconds()
	return &ms
}

// PutPool creates pool name with settings, or replaces the settings of the
// live pool of that name; created tells which. A changed setting applies to
// the next lease or keep-alive (on other pods within poolCacheTTL).
func (s *Service) PutPool(ctx context.Context, name string, ps PoolSettings) (info PoolInfo, created bool, err error) {
	if err := ValidatePoolName(name); err != nil {
		return PoolInfo{}, false, err
	}
	if err := s.validatePoolSettings(ps); err != nil {
		return PoolInfo{}, false, err
	}
	row, err := s.q.PutPool(ctx, db.PutPoolParams{
		Name: name, LeaseTtlMs: msPtr(ps.LeaseTTL), KeepaliveTtlMs: msPtr(ps.KeepaliveTTL),
		MaxLeaseTtlMs: msPtr(ps.MaxLeaseTTL), MaxTokens: ps.MaxTokens, Slots: fixedSlots,
	})
	if err != nil {
		return PoolInfo{}, false, storageError("put pool", err)
	}
	ref := s.refOf(row.ID, row.Name, row.LeaseTtlMs, row.KeepaliveTtlMs, row.MaxLeaseTtlMs, row.MaxTokens)
	s.pools.put(ref)
	st, err := s.poolStats(ctx, ref)
	if err != nil {
		return PoolInfo{}, false, err
	}
	return ref.info(st), row.Created, nil
}

// Pool returns one pool with its counts.
func (s *Service) Pool(ctx context.Context, name string) (PoolInfo, error) {
	ref, err := s.resolveFresh(ctx, name)
	if err != nil {
		return PoolInfo{}, err
	}
	st, err := s.poolStats(ctx, ref)
	if err != nil {
		return PoolInfo{}, err
	}
	return ref.info(st), nil
}

// Pools returns every live pool with its counts, by name.
func (s *Service) Pools(ctx context.Context) ([]PoolInfo, error) {
	rows, err := s.q.ListPools(ctx)
	if err != nil {
		return nil, storageError("list pools", err)
	}
	out := make([]PoolInfo, len(rows))
	for i, r := range rows {
		ref := s.refOf(r.ID, r.Name, r.LeaseTtlMs, r.KeepaliveTtlMs, r.MaxLeaseTtlMs, r.MaxTokens)
		out[i] = ref.info(Stats{Free: r.Total - r.Assigned, Assigned: r.Assigned, Total: r.Total})
	}
	return out, nil
}

// DeletePool retires a pool that holds no live token. Dead tokens not swept
// yet are removed with it (audit `expired`). Pool default is protected.
func (s *Service) DeletePool(ctx context.Context, name string) error {
	if ValidatePoolName(name) != nil {
		return ErrPoolNotFound
	}
	if name == DefaultPool {
		return fmt.Errorf("%w: pool %s cannot be deleted", ErrPoolProtected, DefaultPool)
	}
	err := pgx.BeginFunc(ctx, s.conns, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		row, err := q.LockPoolForDelete(ctx, name)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrPoolNotFound
		}
		if err != nil {
			return err
		}
		if row.HasLiveTokens {
			return fmt.Errorf("%w: delete its tokens first", ErrPoolNotEmpty)
		}
		if err := s.removeDeadTokens(ctx, q, row.ID); err != nil {
			return err
		}
		return q.MarkPoolDeleted(ctx, row.ID)
	})
	if err != nil {
		return wrapDomain(err)
	}
	s.pools.forget(name)
	return nil
}

// CheckPool returns ErrPoolNotFound unless a live pool is named name ("" is
// DefaultPool).
func (s *Service) CheckPool(ctx context.Context, name string) error {
	_, err := s.resolve(ctx, name)
	return err
}

// poolStats sums one pool's counter slots.
func (s *Service) poolStats(ctx context.Context, ref poolRef) (Stats, error) {
	row, err := s.q.PoolCounts(ctx, ref.id)
	if err != nil {
		return Stats{}, storageError("stats", err)
	}
	return Stats{Free: row.Total - row.Assigned, Assigned: row.Assigned, Total: row.Total}, nil
}

// resolve returns the pool named name ("" is DefaultPool) from the pod's
// cache, reading it when the cache holds none or a stale one.
func (s *Service) resolve(ctx context.Context, name string) (poolRef, error) {
	if name == "" {
		name = DefaultPool
	}
	if ref, ok := s.pools.get(name); ok {
		return ref, nil
	}
	return s.resolveFresh(ctx, name)
}

// resolveFresh reads the pool from the database and caches it.
func (s *Service) resolveFresh(ctx context.Context, name string) (poolRef, error) {
	if name == "" {
		name = DefaultPool
	}
	if ValidatePoolName(name) != nil {
		return poolRef{}, fmt.Errorf("%w: %q", ErrPoolNotFound, name)
	}
	row, err := s.q.GetPool(ctx, name)
	if errors.Is(err, pgx.ErrNoRows) {
		s.pools.forget(name)
		return poolRef{}, fmt.Errorf("%w: %q", ErrPoolNotFound, name)
	}
	if err != nil {
		return poolRef{}, storageError("read pool", err)
	}
	ref := s.refOf(row.ID, row.Name, row.LeaseTtlMs, row.KeepaliveTtlMs, row.MaxLeaseTtlMs, row.MaxTokens)
	s.pools.put(ref)
	return ref, nil
}

// removeDeadTokens deletes the dead tokens of a pool being deleted, inside
// its transaction.
func (s *Service) removeDeadTokens(ctx context.Context, q *db.Queries, poolID int32) error {
	_, err := q.RemovePoolDeadTokens(ctx, db.RemovePoolDeadTokensParams{PoolID: poolID, Pod: s.settings.Pod})
	return err
}
