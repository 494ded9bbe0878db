package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/tokenlease/tokenlease/internal/auth"
	"github.com/tokenlease/tokenlease/internal/httpapi"
)

// authParts are a pod's authentication: the key cache and the JWT verifier
// run in the background and stop with the pod.
type authParts struct {
	keys *auth.Keys
	jwt  *auth.JWTVerifier
}

// newAuth builds the API's authentication from the configuration and
// creates the bootstrap admin key when it is due.
func (a *App) newAuth(ctx context.Context, opts Options) (httpapi.Auth, error) {
	cfg := a.Config.Auth
	h := httpapi.Auth{Keys: auth.NewStore(a.Pool), SeedRoutesAnonymous: bool(cfg.SeedRoutesAnonymous)}
	if cfg.RateLimit > 0 {
		h.Limiter = auth.NewLimiter(auth.LimiterConfig{Default: cfg.RateLimit})
	}
	if cfg.BootstrapAdminKey != "" {
		created, err := h.Keys.Bootstrap(ctx, cfg.BootstrapAdminKey)
		if err != nil {
			return h, err
		}
		if created {
			slog.Info("created the bootstrap admin key", "name", auth.BootstrapAdminName)
		}
	}
	if cfg.AuthOff() {
		// Every start-up says it again: AUTH=off must never go unnoticed.
		slog.Warn("AUTH=off: authentication is disabled, every caller is admin; use it only for local experiments")
		return h, nil
	}
	a.auth.keys = auth.NewKeys(a.Pool, auth.KeysConfig{
		TouchEvery: opts.KeysTouchEvery, Logger: slog.Default().With("component", "auth"),
	})
	authn := &auth.Authenticator{Keys: a.auth.keys}
	if cfg.JWTJWKSURL != "" {
		v, err := auth.NewJWTVerifier(ctx, auth.JWTConfig{
			JWKSURL: cfg.JWTJWKSURL, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, RoleClaim: cfg.JWTRole,
			Logger: slog.Default().With("component", "auth"),
		})
		if err != nil {
			return h, err
		}
		a.auth.jwt, authn.JWT = v, v
	}
	h.Authenticator = authn
	keys := a.auth.keys
	h.KeysChanged = func(ctx context.Context) {
		if err := keys.Refresh(ctx); err != nil {
			slog.WarnContext(ctx, "API key cache refresh failed; the background refresh retries", "error", err)
		}
	}
	return h, nil
}

// startAuth loads the key cache before the pod serves.
func (a *App) startAuth(ctx context.Context) error {
	if a.auth.keys == nil {
		return nil
	}
	if err := a.auth.keys.Start(ctx); err != nil {
		return fmt.Errorf("start API key cache: %w", err)
	}
	return nil
}

func (a *App) closeAuth() {
	if a.auth.keys != nil {
		a.auth.keys.Close()
	}
	if a.auth.jwt != nil {
		a.auth.jwt.Close()
	}
}
