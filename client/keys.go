package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Roles of API keys (DESIGN section 8).
const (
	RoleAdmin    = "admin"
	RoleOperator = "operator"
	RoleClient   = "client"
	RoleReader   = "reader"
)

// KeyRequest describes a new API key.
type KeyRequest struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Pools     []string  `json:"pools,omitempty"`      // default: every pool
	ExpiresIn *Duration `json:"expires_in,omitempty"` // default: never
	RateLimit *float64  `json:"rate_limit,omitempty"` // requests/s; default RATE_LIMIT
}

// KeyInfo is an API key as listed: never its secret. Zero times are unset.
type KeyInfo struct {
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	Pools      []string  `json:"pools,omitempty"` // none: every pool
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	RateLimit  float64   `json:"rate_limit,omitempty"` // 0: the server's RATE_LIMIT
	CreatedAt  time.Time `json:"created_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"` // written at most once a minute
}

// NewKey is a key just created, with its secret: shown this once.
type NewKey struct {
	KeyInfo
	Key string `json:"key"` // "tl_..."
}

// CreateKey creates an API key (role admin); ErrKeyExists when the name is
// taken (names of revoked keys stay taken). Never retried.
func (c *Client) CreateKey(ctx context.Context, r KeyRequest) (NewKey, error) {
	var out NewKey
	err := c.do(ctx, &call{method: http.MethodPost, path: "/admin/keys", body: r, out: &out})
	return out, err
}

// ListKeys lists the API keys (role admin), revoked ones included.
func (c *Client) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	var out struct {
		Keys []KeyInfo `json:"keys"`
	}
	err := c.do(ctx, &call{method: http.MethodGet, path: "/admin/keys", out: &out, idempotent: true})
	return out.Keys, err
}

// RevokeKey revokes the key called name (role admin); ErrKeyNotFound when
// there is no such live key. Never retried.
func (c *Client) RevokeKey(ctx context.Context, name string) error {
	return c.do(ctx, &call{method: http.MethodDelete, path: "/admin/keys/" + url.PathEscape(name)})
}
