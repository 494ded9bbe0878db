package apptest

import (
	"context"
	"net/http"
	"testing"

	"github.com/tokenlease/tokenlease/internal/auth"
	"github.com/tokenlease/tokenlease/internal/config"
)

// AdminKey is the bootstrap admin key of every pod this test process
// starts (pods on one database share their admin). It is made at start, so
// no key is ever written into the repository.
var AdminKey = auth.NewSecret()

// Anonymous, as a credential, sends a request without Authorization.
const Anonymous = ""

// WithAuthOff starts the pod with AUTH=off.
func WithAuthOff() Option {
	return WithConfig(func(c *config.Config) { c.AuthMode = "off" })
}

type credentialKey struct{}

// WithCredential makes req send credential as its bearer token, or no
// Authorization at all for Anonymous, instead of the pod's admin key.
func WithCredential(req *http.Request, credential string) *http.Request {
	return req.WithContext(context.WithValue(req.Context(), credentialKey{}, credential))
}

// defaultCredential is the transport of a Pod's Client: a request without
// an Authorization header and without WithCredential sends the admin key,
// so tests that are not about authentication need not think about it.
type defaultCredential struct {
	key  string
	next http.RoundTripper
}

func (d *defaultCredential) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") != "" {
		return d.next.RoundTrip(req)
	}
	cred, chosen := req.Context().Value(credentialKey{}).(string)
	if !chosen {
		cred = d.key
	}
	if cred == Anonymous {
		return d.next.RoundTrip(req)
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+cred)
	return d.next.RoundTrip(req)
}

// Key is an API key a test created.
type Key struct {
	Name   string
	Role   string
	Secret string
}

// CreateKey creates an API key of role through POST /admin/keys, limited to
// pools when any are given; extra fields (expires_in, rate_limit) go into
// the body as they are.
func (p *Pod) CreateKey(t testing.TB, name, role string, pools []string, extra map[string]any) Key {
	t.Helper()
	body := map[string]any{"name": name, "role": role}
	if pools != nil {
		body["pools"] = pools
	}
	for k, v := range extra {
		body[k] = v
	}
	r := p.Call(t, http.MethodPost, "/admin/keys", body)
	if r.Status != http.StatusCreated {
		t.Fatalf("create key %s: %d %s", name, r.Status, r.Body)
	}
	var created struct {
		Key string `json:"key"`
	}
	r.JSON(t, &created)
	return Key{Name: name, Role: role, Secret: created.Key}
}

// KeysOfEachRole creates one key of every role (named after it, with the
// given prefix), limited to pools when given.
func (p *Pod) KeysOfEachRole(t testing.TB, prefix string, pools []string) map[auth.Role]Key {
	t.Helper()
	keys := make(map[auth.Role]Key, len(auth.Roles))
	for _, r := range auth.Roles {
		keys[r] = p.CreateKey(t, prefix+string(r), string(r), pools, nil)
	}
	return keys
}

// ClientWithKey returns an HTTP client that sends key as apptest pods'
// clients do, for tests that build a pod by hand.
func ClientWithKey(key string) *http.Client {
	return &http.Client{Transport: &defaultCredential{key: key, next: http.DefaultTransport}}
}
