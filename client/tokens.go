package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Generate creates n random tokens in pool ("" means "default").
func (c *Client) Generate(ctx context.Context, pool string, n int) ([]string, error) {
	var out struct {
		Tokens []string `json:"tokens"`
	}
	err := c.do(ctx, &call{method: http.MethodPost, path: tokensPath(pool) + "/generate",
		body: map[string]int{"count": n}, out: &out})
	return out.Tokens, err
}

// MaxBatch is the most values one generate or import takes.
const MaxBatch = 10000

// Import adds values the caller owns to pool; values already live are left
// untouched and listed in Existing. At most MaxBatch values per call.
func (c *Client) Import(ctx context.Context, pool string, values []string) (ImportResult, error) {
	var out ImportResult
	err := c.do(ctx, &call{method: http.MethodPost, path: tokensPath(pool) + "/import",
		body: map[string][]string{"tokens": values}, out: &out})
	return out, err
}

// AssignOptions shape an assign; zero values take the server's defaults.
type AssignOptions struct {
	Holder string        // who takes the lease, e.g. "worker-7@host-a"
	TTL    time.Duration // the lease's length (server default LEASE_TTL)
	Wait   time.Duration // wait up to this long for a free token (max 60s)
}

// Assign leases a random free token. It is never retried (a second attempt
// could take a second token); a connection refused before sending is tried
// on the next base URL. Most callers want Acquire, which also renews.
func (c *Client) Assign(ctx context.Context, pool string, o AssignOptions) (Assignment, error) {
	q := url.Values{}
	if o.Wait > 0 {
		q.Set("wait", o.Wait.String())
	}
	body := map[string]any{}
	if o.Holder != "" {
		body["holder"] = o.Holder
	}
	if o.TTL > 0 {
		body["ttl"] = o.TTL.String()
	}
	var out Assignment
	err := c.do(ctx, &call{method: http.MethodPost, path: tokensPath(pool) + "/assign", query: q,
		body: body, out: &out, extraTimeout: o.Wait})
	return out, err
}

type tokenRef struct {
	Token   string `json:"token"`
	LeaseID int64  `json:"lease_id,omitempty"`
}

// Unblock frees token. With leaseID > 0 it frees only that lease (fenced:
// ErrLeaseMismatch when another lease is live, ErrNotAssigned when none is)
// and is retried on transient errors; with 0 it frees whatever lease is
// live and is never retried (a repeat could free a newer holder's lease).
func (c *Client) Unblock(ctx context.Context, pool, token string, leaseID int64) error {
	return c.do(ctx, &call{method: http.MethodPost, path: tokensPath(pool) + "/unblock",
		body: tokenRef{token, leaseID}, idempotent: leaseID > 0})
}

// KeepAlive refreshes token's alive_until; with leaseID > 0 it also renews
// that lease for its TTL (ErrLeaseMismatch when it is not the live lease).
// Safe to repeat, so retried on transient errors.
func (c *Client) KeepAlive(ctx context.Context, pool, token string, leaseID int64) (TokenInfo, error) {
	return c.keepAlive(ctx, pool, token, leaseID, 0)
}

// keepAlive is KeepAlive with a timeout per attempt (0: RequestTimeout).
func (c *Client) keepAlive(ctx context.Context, pool, token string, leaseID int64, attemptTimeout time.Duration) (TokenInfo, error) {
	var out TokenInfo
	err := c.do(ctx, &call{method: http.MethodPost, path: tokensPath(pool) + "/keep-alive",
		body: tokenRef{token, leaseID}, out: &out, idempotent: true, timeout: attemptTimeout})
	return out, err
}

// Delete removes token whatever its state. Never retried: a repeat after a
// lost answer would report ErrNotFound for a delete that succeeded.
func (c *Client) Delete(ctx context.Context, pool, token string) error {
	return c.do(ctx, &call{method: http.MethodDelete, path: tokensPath(pool) + "/delete",
		body: tokenRef{Token: token}})
}

// Get looks token up.
func (c *Client) Get(ctx context.Context, pool, token string) (TokenInfo, error) {
	var out TokenInfo
	err := c.do(ctx, &call{method: http.MethodGet, path: tokensPath(pool) + "/" + url.PathEscape(token),
		out: &out, idempotent: true})
	return out, err
}

// Stats returns pool's counts.
func (c *Client) Stats(ctx context.Context, pool string) (Stats, error) {
	var out Stats
	err := c.do(ctx, &call{method: http.MethodGet, path: tokensPath(pool) + "/stats", out: &out, idempotent: true})
	return out, err
}
