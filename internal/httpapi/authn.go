package httpapi

import (
	"context"
	"net"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/auth"
	"github.com/tokenlease/tokenlease/internal/tokens"
)

// Auth configures who may call the API.
type Auth struct {
	// Authenticator verifies credentials; nil means AUTH=off: every caller
	// is admin, with no actor.
	Authenticator *auth.Authenticator
	// Keys administers API keys (/admin/keys).
	Keys *auth.Store
	// KeysChanged is called after a key is created or revoked here, so that
	// this pod's cache counts it at once.
	KeysChanged func(ctx context.Context)
	// Limiter rate-limits callers; nil: no limits.
	Limiter *auth.Limiter
	// SeedRoutesAnonymous: SEED_ROUTES_ANONYMOUS.
	SeedRoutesAnonymous bool
}

const principalKey = "tokenlease.principal"

// principalOf is the caller of an authorised request.
func principalOf(c *gin.Context) auth.Principal {
	p, _ := c.Get(principalKey)
	pr, _ := p.(auth.Principal)
	return pr
}

// authOff is every caller with AUTH=off.
var authOff = auth.Principal{Role: auth.RoleAdmin, Source: "off"}

// authenticate is the middleware that authenticates, rate-limits and
// authorises every request against the table in authz.go, before any
// handler reads the body.
func (h *handlers) authenticate(c *gin.Context) {
	route := c.FullPath()
	if route == "" {
		c.Next() // no such route: 404 or 405, nothing to protect
		return
	}
	r, ok := ruleFor(c.Request.Method, route)
	if !ok {
		r = adminOnly
	}
	if r.public {
		c.Next()
		return
	}
	p, err := h.principal(c, r)
	if err == nil {
		err = h.limit(c, p)
	}
	if err == nil {
		err = authorize(c, r, p)
	}
	if err != nil {
		writeError(c, err)
		return
	}
	c.Set(principalKey, p)
	// The domain records the actor on leases and audit rows, and refuses a
	// client another caller's live lease inside the statement that would
	// change it.
	c.Request = c.Request.WithContext(tokens.WithCaller(c.Request.Context(),
		tokens.Caller{Actor: p.Name, OwnLeasesOnly: p.Role == auth.RoleClient}))
	if r.events && !p.Role.ReadsTokenValues() {
		c.Request = c.Request.WithContext(withStreamAccess(c.Request.Context(),
			streamAccess{Redact: true, ResumeWindow: readerResumeWindow}))
	}
	c.Next()
}

// principal tells who sent the request.
func (h *handlers) principal(c *gin.Context, r rule) (auth.Principal, error) {
	a := h.opts.Auth.Authenticator
	if a == nil {
		return authOff, nil
	}
	cred, ok := bearer(c.GetHeader("Authorization"))
	if !ok {
		if r.seed && h.opts.Auth.SeedRoutesAnonymous && c.GetHeader("Authorization") == "" {
			return seedAnonymous(r), nil
		}
		return auth.Principal{}, auth.ErrUnauthenticated
	}
	return a.Authenticate(c.Request.Context(), cred)
}

// bearer reads "Bearer <credential>" (the scheme is case-insensitive).
func bearer(header string) (string, bool) {
	const scheme = "bearer "
	if len(header) <= len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return "", false
	}
	cred := strings.TrimSpace(header[len(scheme):])
	return cred, cred != ""
}

// limit takes one request from the caller's bucket: a key's or a subject's
// own, else the client address's.
func (h *handlers) limit(c *gin.Context, p auth.Principal) error {
	l := h.opts.Auth.Limiter
	if l == nil {
		return nil
	}
	caller := p.Source + ":" + p.Name
	if p.Name == "" {
		host, _, err := net.SplitHostPort(c.Request.RemoteAddr)
		if err != nil {
			host = c.Request.RemoteAddr
		}
		caller = "addr:" + host
	}
	return l.Allow(caller, p.RateLimit)
}
