package httpapi_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/config"
)

// jwtIssuer is an identity provider of the test: it serves its JWKS over
// HTTP and signs tokens with its RSA key.
type jwtIssuer struct {
	url string
	key jwk.Key
}

func newJWTIssuer(t *testing.T) *jwtIssuer {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwk.Import(priv)
	if err != nil {
		t.Fatal(err)
	}
	_ = key.Set(jwk.KeyIDKey, "test-1")
	pub, err := key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	return &jwtIssuer{url: srv.URL, key: key}
}

// token signs a JWT for sub with role and pools (nil: no pools claim),
// expiring at exp, for audience aud.
func (i *jwtIssuer) token(t *testing.T, sub, role string, pools []string, aud string, exp time.Time) string {
	t.Helper()
	b := jwt.NewBuilder().Issuer("https://idp.test").Audience([]string{aud}).Subject(sub).
		IssuedAt(time.Now().Add(-time.Minute)).Expiration(exp).Claim("tokenlease_role", role)
	if pools != nil {
		b = b.Claim("tokenlease_pools", pools)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256(), i.key))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// A pod configured with JWT_JWKS_URL, JWT_ISSUER and JWT_AUDIENCE takes
// JWTs: the role and pools come from their claims and sub is the actor in
// leases and audit rows; expired tokens and tokens for another audience or
// from another issuer are 401.
func TestJWTThroughAPod(t *testing.T) {
	t.Parallel()
	idp := newJWTIssuer(t)
	pod := apptest.NewPod(t, apptest.WithConfig(func(c *config.Config) {
		c.JWTJWKSURL, c.JWTIssuer, c.JWTAudience = idp.url, "https://idp.test", "tokenlease"
	}))
	wantStatus(t, pod.Call(t, "PUT", "/pools/jobs", nil), 201)
	hour := time.Now().Add(time.Hour)
	operator := idp.token(t, "svc-ops", "operator", nil, "tokenlease", hour)
	client := idp.token(t, "svc-worker-7", "client", []string{"jobs"}, "tokenlease", hour)

	wantStatus(t, pod.CallAs(t, operator, "POST", "/pools/jobs/tokens/import", map[string]any{"tokens": []string{"job-token-1"}}), 201)
	r := pod.CallAs(t, client, "POST", "/pools/jobs/tokens/assign", nil)
	wantStatus(t, r, 200)
	var l apptest.Lease
	r.JSON(t, &l)
	wantStatus(t, pod.CallAs(t, client, "POST", "/pools/jobs/tokens/keep-alive", map[string]any{"token": l.Token, "lease_id": l.LeaseID}), 200)
	// Its pools claim limits it; its role is client's.
	wantError(t, pod.CallAs(t, client, "POST", "/tokens/assign", nil), 403, "forbidden")
	wantError(t, pod.CallAs(t, client, "POST", "/pools/jobs/tokens/generate", map[string]any{"count": 1}), 403, "forbidden")

	if actor := queryString(t, pod, "SELECT lease_actor FROM tokens WHERE value = 'job-token-1'"); actor != "svc-worker-7" {
		t.Errorf("lease actor %q, want the JWT's sub svc-worker-7", actor)
	}
	for kind, want := range map[string]string{"imported": "svc-ops", "assigned": "svc-worker-7", "kept_alive": "svc-worker-7"} {
		if actor := queryString(t, pod, "SELECT actor FROM token_events WHERE token = 'job-token-1' AND kind = $1", kind); actor != want {
			t.Errorf("audit row %s: actor %q, want %q", kind, actor, want)
		}
	}

	for name, tok := range map[string]string{
		"expired":        idp.token(t, "svc-worker-7", "client", nil, "tokenlease", time.Now().Add(-time.Minute)),
		"wrong audience": idp.token(t, "svc-worker-7", "client", nil, "someone-else", hour),
		"garbage":        "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
	} {
		r := pod.CallAs(t, tok, "GET", "/pools/jobs/tokens/stats", nil)
		wantError(t, r, 401, "unauthenticated")
		if r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s JWT: 401 without WWW-Authenticate", name)
		}
	}
	// Keys still work beside JWTs.
	wantStatus(t, pod.Call(t, "GET", "/tokens/stats", nil), 200)
}
