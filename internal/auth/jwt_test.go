package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// jwksServer serves a JWKS that a test may change, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	set     jwk.Set
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{set: jwk.NewSet()}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.set)
	}))
	t.Cleanup(s.Close)
	return s
}

// publish adds the public half of priv under kid.
func (s *jwksServer) publish(t *testing.T, priv any, kid string) jwk.Key {
	t.Helper()
	k, err := jwk.Import(priv)
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, kid)
	pub, err := k.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.set.AddKey(pub); err != nil {
		t.Fatal(err)
	}
	return k
}

type claims struct {
	iss, aud, sub, role string
	exp, nbf            time.Time
	pools               []string
}

func goodClaims() claims {
	return claims{iss: "https://idp.test", aud: "tokenlease", sub: "svc-17", role: "client", exp: time.Now().Add(time.Hour)}
}

func sign(t *testing.T, c claims, alg jwa.SignatureAlgorithm, key any) string {
	t.Helper()
	b := jwt.NewBuilder().Issuer(c.iss).Audience([]string{c.aud}).Subject(c.sub).Expiration(c.exp).Claim("tokenlease_role", c.role)
	if !c.nbf.IsZero() {
		b = b.NotBefore(c.nbf)
	}
	if c.pools != nil {
		b = b.Claim(PoolsClaim, c.pools)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Sign(tok, jwt.WithKey(alg, key))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestJWTVerification(t *testing.T) {
	srv := newJWKSServer(t)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	rsaJWK := srv.publish(t, rsaKey, "rsa-1")
	ecJWK := srv.publish(t, ecKey, "ec-1")
	edJWK := srv.publish(t, edKey, "ed-1")

	v, err := NewJWTVerifier(context.Background(), JWTConfig{
		JWKSURL: srv.URL, Issuer: "https://idp.test", Audience: "tokenlease", RefetchEvery: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx := context.Background()

	for name, tok := range map[string]string{
		"RS256": sign(t, goodClaims(), jwa.RS256(), rsaJWK),
		"ES256": sign(t, goodClaims(), jwa.ES256(), ecJWK),
		"EdDSA": sign(t, goodClaims(), jwa.EdDSA(), edJWK),
	} {
		p, err := v.Verify(ctx, tok)
		if err != nil || p.Name != "svc-17" || p.Role != RoleClient || !p.AllPools() || p.Source != "jwt" {
			t.Errorf("%s: %+v, %v", name, p, err)
		}
	}
	c := goodClaims()
	c.pools = []string{"eu-proxies"}
	if p, err := v.Verify(ctx, sign(t, c, jwa.RS256(), rsaJWK)); err != nil || !p.CoversPool("eu-proxies") || p.CoversPool("default") {
		t.Errorf("pools claim: %+v, %v", p, err)
	}

	refused := map[string]string{}
	mod := func(f func(*claims)) string {
		c := goodClaims()
		f(&c)
		return sign(t, c, jwa.RS256(), rsaJWK)
	}
	refused["expired"] = mod(func(c *claims) { c.exp = time.Now().Add(-time.Minute) })
	refused["not yet valid"] = mod(func(c *claims) { c.nbf = time.Now().Add(time.Hour) })
	refused["wrong issuer"] = mod(func(c *claims) { c.iss = "https://evil.test" })
	refused["wrong audience"] = mod(func(c *claims) { c.aud = "someone-else" })
	refused["unknown role"] = mod(func(c *claims) { c.role = "root" })
	refused["no subject"] = mod(func(c *claims) { c.sub = "" })
	refused["bad pool"] = mod(func(c *claims) { c.pools = []string{"Not A Pool"} })

	// Tampered payload: the role raised to admin after signing.
	good := sign(t, goodClaims(), jwa.RS256(), rsaJWK)
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"client"`, `"admin"`, 1)))
	refused["tampered payload"] = strings.Join(parts, ".")

	// alg none.
	tok, _ := jwt.NewBuilder().Issuer("https://idp.test").Audience([]string{"tokenlease"}).Subject("svc-17").
		Expiration(time.Now().Add(time.Hour)).Claim("tokenlease_role", "admin").Build()
	none, err := jwt.Sign(tok, jwt.WithInsecureNoSignature())
	if err != nil {
		t.Fatal(err)
	}
	refused["alg none"] = string(none)

	// HMAC with the public key as the secret (key confusion), under the RSA kid.
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, "rsa-1")
	hs, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), pubDER, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	refused["HS256 with the public key"] = string(hs)
	pubJSON, _ := json.Marshal(rsaJWK)
	hs2, _ := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), pubJSON, jws.WithProtectedHeaders(hdr)))
	refused["HS256 with the JWK"] = string(hs2)

	// Signed by a key the JWKS does not hold.
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherJWK, _ := jwk.Import(otherKey)
	_ = otherJWK.Set(jwk.KeyIDKey, "rsa-1")
	refused["foreign key, known kid"] = sign(t, goodClaims(), jwa.RS256(), otherJWK)

	for name, tok := range refused {
		if p, err := v.Verify(ctx, tok); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: accepted as %+v (%v)", name, p, err)
		}
	}

	// A new signing key appears in the JWKS: its first token makes the
	// verifier fetch again (rate-limited), then it verifies.
	rotKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rotJWK := srv.publish(t, rotKey, "ec-2")
	rotated := sign(t, goodClaims(), jwa.ES256(), rotJWK)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := v.Verify(ctx, rotated); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a token of a rotated-in key is still refused")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Unknown kids do not make a fetch each.
	before := srv.fetches.Load()
	c = goodClaims()
	ghost, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ghostJWK, _ := jwk.Import(ghost)
	_ = ghostJWK.Set(jwk.KeyIDKey, "ghost")
	forged := sign(t, c, jwa.ES256(), ghostJWK)
	for range 50 {
		_, _ = v.Verify(ctx, forged)
	}
	if n := srv.fetches.Load() - before; n > 5 {
		t.Errorf("50 tokens with an unknown kid made %d JWKS fetches", n)
	}
}
