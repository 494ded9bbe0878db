package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// JWTConfig configures JWT verification (DESIGN section 8).
type JWTConfig struct {
	JWKSURL   string
	Issuer    string // required: tokens of another issuer are refused
	Audience  string // required: tokens for another audience are refused
	RoleClaim string // default tokenlease_role
	// RefetchEvery bounds how often a token signed with an unknown kid may
	// make the verifier fetch the JWKS again (default 10s), so that forged
	// kids cannot turn the verifier into a load generator.
	RefetchEvery time.Duration
	// MaxAge is how long a fetched JWKS is used before a background refresh
	// (default 15m).
	MaxAge     time.Duration
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// PoolsClaim holds a JWT's pools (absent: every pool).
const PoolsClaim = "tokenlease_pools"

// The signature algorithms accepted, each with the only key type that may
// verify it: HMAC and "none" are never accepted, so a public key can never
// be used as an HMAC secret.
var jwtAlgs = map[jwa.SignatureAlgorithm]jwa.KeyType{
	jwa.RS256(): jwa.RSA(),
	jwa.ES256(): jwa.EC(),
	jwa.EdDSA(): jwa.OKP(),
}

// JWTVerifier verifies JWTs against a cached JWKS.
type JWTVerifier struct {
	cfg    JWTConfig
	cache  *jwk.Cache
	cancel context.CancelFunc

	mu          sync.Mutex
	lastRefetch time.Time
}

// NewJWTVerifier starts the JWKS cache. An unreachable JWKS does not stop
// start-up: tokens are refused until it answers.
func NewJWTVerifier(ctx context.Context, cfg JWTConfig) (*JWTVerifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("JWT_ISSUER and JWT_AUDIENCE must be set with JWT_JWKS_URL")
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = "tokenlease_role"
	}
	if cfg.RefetchEvery <= 0 {
		cfg.RefetchEvery = 10 * time.Second
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 15 * time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cache, err := jwk.NewCache(cctx, httprc.NewClient())
	if err != nil {
		cancel()
		return nil, fmt.Errorf("JWT_JWKS_URL: %w", err)
	}
	err = cache.Register(cctx, cfg.JWKSURL,
		jwk.WithHTTPClient(cfg.HTTPClient),
		jwk.WithMaxInterval(cfg.MaxAge),
		jwk.WithMinInterval(cfg.RefetchEvery),
		jwk.WithWaitReady(false))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("JWT_JWKS_URL: %w", err)
	}
	return &JWTVerifier{cfg: cfg, cache: cache, cancel: cancel}, nil
}

// Close stops the cache's background refresh.
func (v *JWTVerifier) Close() {
	v.cancel()
}

// Verify checks a JWT's signature, exp, nbf, iss and aud, and returns its
// principal: actor = sub, role and pools from the claims.
func (v *JWTVerifier) Verify(ctx context.Context, token string) (Principal, error) {
	tok, err := jwt.Parse([]byte(token),
		jwt.WithKeyProvider(jws.KeyProviderFunc(v.fetchKeys)),
		jwt.WithContext(ctx),
		jwt.WithValidate(true),
		jwt.WithIssuer(v.cfg.Issuer),
		jwt.WithAudience(v.cfg.Audience),
		jwt.WithRequiredClaim("exp"),
		jwt.WithAcceptableSkew(5*time.Second))
	if err != nil {
		return Principal{}, ErrUnauthenticated
	}
	sub, ok := tok.Subject()
	if !ok || sub == "" {
		return Principal{}, ErrUnauthenticated
	}
	var role string
	if err := tok.Get(v.cfg.RoleClaim, &role); err != nil {
		return Principal{}, ErrUnauthenticated
	}
	r, err := ParseRole(role)
	if err != nil {
		return Principal{}, ErrUnauthenticated
	}
	p := Principal{Name: sub, Role: r, Source: "jwt"}
	if tok.Has(PoolsClaim) {
		var pools []any
		if err := tok.Get(PoolsClaim, &pools); err != nil {
			return Principal{}, ErrUnauthenticated
		}
		p.Pools = make([]string, 0, len(pools))
		for _, x := range pools {
			s, ok := x.(string)
			if !ok {
				return Principal{}, ErrUnauthenticated
			}
			p.Pools = append(p.Pools, s)
		}
		if ValidatePools(p.Pools) != nil {
			return Principal{}, ErrUnauthenticated
		}
	}
	return p, nil
}

// fetchKeys hands the verifier the keys that may check sig: those of its
// kid (every key when it names none) whose type fits its algorithm. An
// unknown kid makes the JWKS be fetched again, at most once per
// RefetchEvery (a rotated signing key appears without waiting for MaxAge).
func (v *JWTVerifier) fetchKeys(ctx context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
	h := sig.ProtectedHeaders()
	alg, ok := h.Algorithm()
	if !ok {
		return errors.New("no alg")
	}
	kty, ok := jwtAlgs[alg]
	if !ok {
		return errors.New("algorithm not accepted")
	}
	kid, hasKID := h.KeyID()
	set, err := v.cache.Lookup(ctx, v.cfg.JWKSURL)
	if err != nil || (hasKID && !hasKey(set, kid)) {
		if set, err = v.refetch(ctx); err != nil {
			return err
		}
	}
	found := false
	for i := range set.Len() {
		key, _ := set.Key(i)
		if k, _ := key.KeyID(); hasKID && k != kid {
			continue
		}
		if key.KeyType() != kty {
			continue
		}
		if ka, ok := key.Algorithm(); ok && ka.String() != alg.String() {
			continue
		}
		sink.Key(alg, key)
		found = true
	}
	if !found {
		return errors.New("no key fits")
	}
	return nil
}

func hasKey(set jwk.Set, kid string) bool {
	_, ok := set.LookupKeyID(kid)
	return ok
}

// refetch fetches the JWKS now, unless that happened less than RefetchEvery
// ago; it returns the set known afterwards.
func (v *JWTVerifier) refetch(ctx context.Context) (jwk.Set, error) {
	v.mu.Lock()
	due := time.Since(v.lastRefetch) >= v.cfg.RefetchEvery
	if due {
		v.lastRefetch = time.Now()
	}
	v.mu.Unlock()
	if due {
		set, err := v.cache.Refresh(ctx, v.cfg.JWKSURL)
		if err != nil {
			v.cfg.Logger.Warn("JWKS fetch failed", "error", err)
			return nil, err
		}
		return set, nil
	}
	return v.cache.Lookup(ctx, v.cfg.JWKSURL)
}
