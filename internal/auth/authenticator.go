package auth

import (
	"context"
	"strings"
)

// Authenticator tells who sent a credential: an API key, or a JWT when a
// JWKS is configured.
type Authenticator struct {
	Keys *Keys
	JWT  *JWTVerifier // nil: JWTs are refused
}

// Authenticate returns the principal of credential (the part after
// "Bearer "), or ErrUnauthenticated.
func (a *Authenticator) Authenticate(ctx context.Context, credential string) (Principal, error) {
	switch {
	case strings.HasPrefix(credential, KeyPrefix):
		return a.Keys.Verify(credential)
	case a.JWT != nil && strings.Count(credential, ".") == 2:
		return a.JWT.Verify(ctx, credential)
	}
	return Principal{}, ErrUnauthenticated
}
