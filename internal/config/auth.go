package config

import (
	"fmt"
	"net/url"
	"regexp"
)

// apiKeyFormat is the shape of an API key: tl_ and 43 base64url characters
// (256 bits). internal/auth owns keys; config repeats the shape only to
// refuse a malformed BOOTSTRAP_ADMIN_KEY at start-up, and a test in
// internal/app checks that the two agree.
var apiKeyFormat = regexp.MustCompile(`^tl_[A-Za-z0-9_-]{43}$`)

// LooksLikeAPIKey reports whether s has the shape of an API key.
func LooksLikeAPIKey(s string) bool { return apiKeyFormat.MatchString(s) }

// Auth is the configuration of authentication and rate limits (DESIGN
// section 8).
type Auth struct {
	// AuthMode is keys (API keys, and JWTs when JWT_JWKS_URL is set) or off
	// (every caller is admin: local experiments only).
	AuthMode string `env:"AUTH" envDefault:"keys"`
	// BootstrapAdminKey creates this admin key at start-up when no usable
	// admin key exists. Never logged.
	BootstrapAdminKey string `env:"BOOTSTRAP_ADMIN_KEY"`
	// RateLimit is each caller's requests/s on each pod (0: unlimited);
	// a key's own rate_limit wins.
	RateLimit   float64 `env:"RATE_LIMIT" envDefault:"0"`
	JWTJWKSURL  string  `env:"JWT_JWKS_URL"`
	JWTIssuer   string  `env:"JWT_ISSUER"`
	JWTAudience string  `env:"JWT_AUDIENCE"`
	JWTRole     string  `env:"JWT_ROLE_CLAIM" envDefault:"tokenlease_role"`
	// SeedRoutesAnonymous lets anonymous callers use the seeds' routes
	// (/token/...), and only those, as client and operator of pool default.
	SeedRoutesAnonymous Switch `env:"SEED_ROUTES_ANONYMOUS" envDefault:"off"`
}

// AuthOff reports whether AUTH=off.
func (a Auth) AuthOff() bool { return a.AuthMode == "off" }

func (a Auth) validate() []error {
	var errs []error
	if a.AuthMode != "keys" && a.AuthMode != "off" {
		errs = append(errs, fmt.Errorf("AUTH must be keys or off, got %q", a.AuthMode))
	}
	if a.BootstrapAdminKey != "" {
		if !LooksLikeAPIKey(a.BootstrapAdminKey) {
			errs = append(errs, fmt.Errorf("BOOTSTRAP_ADMIN_KEY must be tl_ followed by 43 base64url characters (make one with `tokend keys generate-secret`)"))
		}
	}
	if a.RateLimit < 0 {
		errs = append(errs, fmt.Errorf("RATE_LIMIT must not be negative, got %g", a.RateLimit))
	}
	if a.JWTJWKSURL != "" {
		if u, err := url.Parse(a.JWTJWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("JWT_JWKS_URL must be an http(s) URL"))
		}
		if a.JWTIssuer == "" || a.JWTAudience == "" {
			errs = append(errs, fmt.Errorf("JWT_ISSUER and JWT_AUDIENCE must be set with JWT_JWKS_URL"))
		}
		if a.JWTRole == "" {
			errs = append(errs, fmt.Errorf("JWT_ROLE_CLAIM must not be empty"))
		}
	}
	return errs
}
