package client

import (
	"context"
	"net/http"
	"net/url"
)

// PoolSettings are a pool's own settings; nil fields fall back to the
// server's environment.
type PoolSettings struct {
	LeaseTTL     *Duration `json:"lease_ttl,omitempty"`
	KeepaliveTTL *Duration `json:"keepalive_ttl,omitempty"`
	MaxLeaseTTL  *Duration `json:"max_lease_ttl,omitempty"`
	MaxTokens    *int64    `json:"max_tokens,omitempty"`
}

// Pool is a pool with its effective settings and counts.
type Pool struct {
	Name         string   `json:"name"`
	LeaseTTL     Duration `json:"lease_ttl"`
	KeepaliveTTL Duration `json:"keepalive_ttl"`
	MaxLeaseTTL  Duration `json:"max_lease_ttl"`
	MaxTokens    int64    `json:"max_tokens"`
	Stats
}

func poolPath(name string) string { return "/pools/" + url.PathEscape(name) }

// PutPool creates pool name or replaces its settings; created reports which.
// Safe to repeat, so retried on transient errors.
func (c *Client) PutPool(ctx context.Context, name string, s PoolSettings) (p Pool, created bool, err error) {
	cl := &call{method: http.MethodPut, path: poolPath(name), body: s, out: &p, idempotent: true}
	err = c.do(ctx, cl)
	return p, cl.status == http.StatusCreated, err
}

// GetPool returns pool name (ErrPoolNotFound when there is none).
func (c *Client) GetPool(ctx context.Context, name string) (Pool, error) {
	var p Pool
	err := c.do(ctx, &call{method: http.MethodGet, path: poolPath(name), out: &p, idempotent: true})
	return p, err
}

// ListPools returns every pool the caller may see.
func (c *Client) ListPools(ctx context.Context) ([]Pool, error) {
	var out struct {
		Pools []Pool `json:"pools"`
	}
	err := c.do(ctx, &call{method: http.MethodGet, path: "/pools", out: &out, idempotent: true})
	return out.Pools, err
}

// DeletePool deletes an empty pool (ErrPoolNotEmpty otherwise;
// ErrPoolProtected for "default"). Never retried.
func (c *Client) DeletePool(ctx context.Context, name string) error {
	return c.do(ctx, &call{method: http.MethodDelete, path: poolPath(name)})
}
