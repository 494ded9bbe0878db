package auth

import (
	"errors"
	"time"
)

// Sentinel errors; internal/httpapi maps each to a status and a stable code.
// Messages never hold a credential.
var (
	// ErrUnauthenticated: no credential, or one that is malformed, unknown,
	// revoked, expired or badly signed. Callers are not told which.
	ErrUnauthenticated = errors.New("missing or invalid credential")
	// ErrForbidden: the caller is known but may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrRateLimited: the caller's token bucket is empty; see RateLimitedError.
	ErrRateLimited = errors.New("rate limit exceeded")
	// ErrInvalid: a key to create is malformed (name, role, pools, ...).
	ErrInvalid = errors.New("invalid key request")
	// ErrKeyExists: a key of that name exists (revoked keys keep their name).
	ErrKeyExists = errors.New("a key with this name exists")
	// ErrKeyNotFound: no live key has that name.
	ErrKeyNotFound = errors.New("no live key has this name")
)

// RateLimitedError is ErrRateLimited with the time after which a request
// would be allowed.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string { return ErrRateLimited.Error() }

// Unwrap makes errors.Is(err, ErrRateLimited) hold.
func (e *RateLimitedError) Unwrap() error { return ErrRateLimited }
