package apptest

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// The API's common steps as tests take them: each fails the test unless the
// pod answers with the step's success status and a well-formed body.

// Lease is the answer of an assign.
type Lease struct {
	Token          string    `json:"token"`
	LeaseID        int64     `json:"lease_id"`
	LeaseExpiresAt time.Time `json:"lease_expires_at"`
	AliveUntil     time.Time `json:"alive_until"`
	Holder         *string   `json:"holder"`
}

// Token is the answer of a lookup or a keep-alive.
type Token struct {
	Token          string     `json:"token"`
	State          string     `json:"state"`
	AliveUntil     time.Time  `json:"alive_until"`
	CreatedAt      *time.Time `json:"created_at"`
	LeaseID        *int64     `json:"lease_id"`
	LeaseExpiresAt *time.Time `json:"lease_expires_at"`
	Holder         *string    `json:"holder"`
}

// Stats is the answer of GET /tokens/stats.
type Stats struct {
	Free     int64 `json:"free"`
	Assigned int64 `json:"assigned"`
	Total    int64 `json:"total"`
}

// TokenPath is /tokens/{token} with the value percent-encoded as one path
// segment.
func TokenPath(value string) string { return "/tokens/" + url.PathEscape(value) }

// Generate adds n tokens and returns them in the order the service reported.
func (p *Pod) Generate(t testing.TB, n int) []string {
	t.Helper()
	r := p.Call(t, "POST", "/tokens/generate", map[string]any{"count": n})
	r.want(t, "generate", http.StatusCreated)
	var out struct{ Tokens []string }
	r.JSON(t, &out)
	if len(out.Tokens) != n {
		t.Fatalf("generate %d returned %d tokens", n, len(out.Tokens))
	}
	return out.Tokens
}

// Import imports values and returns the service's split.
func (p *Pod) Import(t testing.TB, values ...string) (imported, existing []string) {
	t.Helper()
	r := p.Call(t, "POST", "/tokens/import", map[string]any{"tokens": values})
	r.want(t, "import", http.StatusCreated)
	var out struct{ Imported, Existing []string }
	r.JSON(t, &out)
	return out.Imported, out.Existing
}

// Assign leases a token; body is the JSON body (nil for none).
func (p *Pod) Assign(t testing.TB, body any) Lease {
	t.Helper()
	r := p.Call(t, "POST", "/tokens/assign", body)
	r.want(t, "assign", http.StatusOK)
	var l Lease
	r.JSON(t, &l)
	if l.Token == "" || l.LeaseID < 1 {
		t.Fatalf("assign returned no token or lease: %s", r.Body)
	}
	return l
}

// Unblock releases l by its lease id.
func (p *Pod) Unblock(t testing.TB, l Lease) {
	t.Helper()
	r := p.Call(t, "POST", "/tokens/unblock", map[string]any{"token": l.Token, "lease_id": l.LeaseID})
	r.want(t, "unblock", http.StatusOK)
}

// Lookup reads a live token.
func (p *Pod) Lookup(t testing.TB, token string) Token {
	t.Helper()
	r := p.Call(t, "GET", TokenPath(token), nil)
	r.want(t, "lookup", http.StatusOK)
	var v Token
	r.JSON(t, &v)
	return v
}

// Stats reads the pool's counts.
func (p *Pod) Stats(t testing.TB) Stats {
	t.Helper()
	r := p.Call(t, "GET", "/tokens/stats", nil)
	r.want(t, "stats", http.StatusOK)
	var s Stats
	r.JSON(t, &s)
	return s
}

func (r Response) want(t testing.TB, what string, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.Status, status, r.Body)
	}
}
