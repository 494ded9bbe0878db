package auth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenlease/tokenlease/db/authdb"
)

// Store administers API keys in the database. Verification does not use it
// on the hot path: see Keys.
type Store struct {
	q *authdb.Queries
}

// NewStore returns a Store over pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{q: authdb.New(pool)} }

// NewKey is a key to create.
type NewKey struct {
	Name  string
	Role  Role
	Pools []string // nil: every pool
	// ExpiresIn, when positive, makes the key expire that long after its
	// creation (database clock).
	ExpiresIn time.Duration
	// RateLimit, when positive, is the key's own requests/s.
	RateLimit float64
}

// KeyInfo is what may be shown of a key: never its secret or hash.
type KeyInfo struct {
	Name       string     `json:"name"`
	Role       Role       `json:"role"`
	Pools      []string   `json:"pools,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RateLimit  *float64   `json:"rate_limit,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// keyName is the shape of a key's name (also the api_keys CHECK).
var keyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$`)

// maxExpiresIn keeps interval arithmetic far from overflow.
const maxExpiresIn = 100 * 365 * 24 * time.Hour

func (k NewKey) validate() error {
	if !keyName.MatchString(k.Name) {
		return fmt.Errorf("%w: name must be 1..100 characters of letters, digits, '.', '_', '@', '-', starting with a letter or digit", ErrInvalid)
	}
	if _, err := ParseRole(string(k.Role)); err != nil {
		return err
	}
	if err := ValidatePools(k.Pools); err != nil {
		return err
	}
	if k.ExpiresIn < 0 || k.ExpiresIn > maxExpiresIn {
		return fmt.Errorf("%w: expires_in must lie between 1ms and 100 years", ErrInvalid)
	}
	if k.RateLimit < 0 || k.RateLimit > 1e9 {
		return fmt.Errorf("%w: rate_limit must be a positive number of requests per second", ErrInvalid)
	}
	return nil
}

// Create stores a new key and returns its secret, which nobody can read
// again.
func (s *Store) Create(ctx context.Context, k NewKey) (secret string, info KeyInfo, err error) {
	if err := k.validate(); err != nil {
		return "", KeyInfo{}, err
	}
	secret = NewSecret()
	h := hashKey(secret)
	p := authdb.CreateKeyParams{Name: k.Name, KeyHash: h[:], Role: string(k.Role), Pools: k.Pools}
	if k.ExpiresIn > 0 {
		ms := max(k.ExpiresIn.Milliseconds(), 1)
		p.ExpiresInMs = &ms
	}
	if k.RateLimit > 0 {
		p.RateLimit = pgtype.Float8{Float64: k.RateLimit, Valid: true}
	}
	row, err := s.q.CreateKey(ctx, p)
	if errors.Is(err, pgx.ErrNoRows) {
		// ON CONFLICT: the name is taken (a hash collision of 256 random
		// bits does not happen).
		return "", KeyInfo{}, fmt.Errorf("%w: %q", ErrKeyExists, k.Name)
	}
	if err != nil {
		return "", KeyInfo{}, fmt.Errorf("create key: %w", err)
	}
	return secret, infoOf(authdb.ListKeysRow(row)), nil
}

// List returns every key, revoked ones included, by name.
func (s *Store) List(ctx context.Context) ([]KeyInfo, error) {
	rows, err := s.q.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out := make([]KeyInfo, 0, len(rows))
	for _, r := range rows {
		out = append(out, infoOf(r))
	}
	return out, nil
}

// Revoke revokes the live key of that name; every pod refuses it within
// about a second.
func (s *Store) Revoke(ctx context.Context, name string) (KeyInfo, error) {
	row, err := s.q.RevokeKey(ctx, name)
	if errors.Is(err, pgx.ErrNoRows) {
		return KeyInfo{}, fmt.Errorf("%w: %q", ErrKeyNotFound, name)
	}
	if err != nil {
		return KeyInfo{}, fmt.Errorf("revoke key: %w", err)
	}
	return infoOf(authdb.ListKeysRow(row)), nil
}

// BootstrapAdminName names the key BOOTSTRAP_ADMIN_KEY creates.
const BootstrapAdminName = "bootstrap-admin"

// Bootstrap creates the admin key of secret when no usable admin key
// exists; it reports whether it did.
func (s *Store) Bootstrap(ctx context.Context, secret string) (bool, error) {
	if err := ValidateSecret(secret); err != nil {
		return false, fmt.Errorf("BOOTSTRAP_ADMIN_KEY: %w", err)
	}
	h := hashKey(secret)
	_, err := s.q.CreateBootstrapAdmin(ctx, authdb.CreateBootstrapAdminParams{Name: BootstrapAdminName, KeyHash: h[:]})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("bootstrap admin key: %w", err)
	}
	return true, nil
}

func infoOf(r authdb.ListKeysRow) KeyInfo {
	info := KeyInfo{
		Name: r.Name, Role: Role(r.Role), Pools: r.Pools, ExpiresAt: r.ExpiresAt,
		CreatedAt: r.CreatedAt, RevokedAt: r.RevokedAt, LastUsedAt: r.LastUsedAt,
	}
	if r.RateLimit.Valid {
		v := r.RateLimit.Float64
		info.RateLimit = &v
	}
	return info
}
