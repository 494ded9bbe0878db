package tokens

import (
	"errors"
	"fmt"
)

// Sentinel errors of the domain. Callers test them with errors.Is; the HTTP
// layer maps each to a status and a stable code in one table.
var (
	// ErrInvalidRequest wraps every validation failure; the wrapping message
	// says what was wrong.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrNotFound: the token is unknown, deleted, or dead.
	ErrNotFound = errors.New("token not found")
	// ErrNoFreeToken: every live token holds a live lease.
	ErrNoFreeToken = errors.New("no free token")
	// ErrNotAssigned: unblock of a token that holds no live lease.
	ErrNotAssigned = errors.New("token is not assigned")
	// ErrLeaseMismatch: the lease id presented is not the token's live lease.
	ErrLeaseMismatch = errors.New("lease id does not match the current lease")
	// ErrPoolFull: the change would take the pool past MAX_TOKENS.
	ErrPoolFull = errors.New("token pool is full")
	// ErrUnavailable: the service is shutting down or cannot serve now.
	ErrUnavailable = errors.New("service unavailable")
	// ErrPoolNotFound: no live pool has that name.
	ErrPoolNotFound = errors.New("pool not found")
	// ErrPoolNotEmpty: deleting a pool that still holds live tokens.
	ErrPoolNotEmpty = errors.New("pool still holds live tokens")
	// ErrPoolProtected: deleting pool default.
	ErrPoolProtected = errors.New("pool is protected")
	// ErrForbidden: the caller may not act on this lease (another caller's).
	ErrForbidden = errors.New("forbidden")
)

// domainErrors are the sentinels that pass through wrapDomain unchanged.
var domainErrors = []error{
	ErrInvalidRequest, ErrNotFound, ErrNoFreeToken, ErrNotAssigned,
	ErrLeaseMismatch, ErrPoolFull, ErrUnavailable,
	ErrPoolNotFound, ErrPoolNotEmpty, ErrPoolProtected, ErrForbidden,
}

// wrapDomain keeps a domain error as it is and marks anything else as a
// storage failure.
func wrapDomain(err error) error {
	for _, d := range domainErrors {
		if errors.Is(err, d) {
			return err
		}
	}
	return fmt.Errorf("tokens: %w", err)
}
