package client

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Sentinel errors, one per stable error code of the API. Every error a call
// returns for a refused request is an *APIError that matches exactly one of
// them with errors.Is; a call that never got an answer (every base URL
// unreachable) matches ErrUnavailable.
var (
	ErrInvalidRequest  = errors.New("tokenlease: invalid request")    // invalid_request, payload_too_large
	ErrNotFound        = errors.New("tokenlease: token not found")    // not_found
	ErrNoFreeToken     = errors.New("tokenlease: no free token")      // no_free_token
	ErrNotAssigned     = errors.New("tokenlease: token not assigned") // not_assigned
	ErrLeaseMismatch   = errors.New("tokenlease: lease mismatch")     // lease_mismatch
	ErrPoolFull        = errors.New("tokenlease: pool full")          // pool_full
	ErrPoolNotFound    = errors.New("tokenlease: pool not found")     // pool_not_found
	ErrPoolNotEmpty    = errors.New("tokenlease: pool not empty")     // pool_not_empty
	ErrPoolProtected   = errors.New("tokenlease: pool protected")     // pool_protected
	ErrKeyExists       = errors.New("tokenlease: key exists")         // key_exists
	ErrKeyNotFound     = errors.New("tokenlease: key not found")      // key_not_found
	ErrUnauthenticated = errors.New("tokenlease: unauthenticated")    // unauthenticated
	ErrForbidden       = errors.New("tokenlease: forbidden")          // forbidden
	ErrRateLimited     = errors.New("tokenlease: rate limited")       // rate_limited
	ErrUnavailable     = errors.New("tokenlease: unavailable")        // unavailable, and no answer at all
)

var codeErrors = map[string]error{
	"invalid_request":   ErrInvalidRequest,
	"payload_too_large": ErrInvalidRequest,
	"not_found":         ErrNotFound,
	"no_free_token":     ErrNoFreeToken,
	"not_assigned":      ErrNotAssigned,
	"lease_mismatch":    ErrLeaseMismatch,
	"pool_full":         ErrPoolFull,
	"pool_not_found":    ErrPoolNotFound,
	"pool_not_empty":    ErrPoolNotEmpty,
	"pool_protected":    ErrPoolProtected,
	"key_exists":        ErrKeyExists,
	"key_not_found":     ErrKeyNotFound,
	"unauthenticated":   ErrUnauthenticated,
	"forbidden":         ErrForbidden,
	"rate_limited":      ErrRateLimited,
	"unavailable":       ErrUnavailable,
}

// statusErrors classify answers without a readable error body (a proxy's
// page, a truncated body) by their status alone.
var statusErrors = map[int]error{
	http.StatusBadRequest:            ErrInvalidRequest,
	http.StatusRequestEntityTooLarge: ErrInvalidRequest,
	http.StatusUnauthorized:          ErrUnauthenticated,
	http.StatusForbidden:             ErrForbidden,
	http.StatusTooManyRequests:       ErrRateLimited,
	http.StatusServiceUnavailable:    ErrUnavailable,
	http.StatusBadGateway:            ErrUnavailable,
	http.StatusGatewayTimeout:        ErrUnavailable,
}

// APIError is a request the server answered with an error.
type APIError struct {
	Status     int           // HTTP status
	Code       string        // the stable error code, e.g. "lease_mismatch"
	Message    string        // the server's human text
	RequestID  string        // X-Request-ID of the answer, when the server sent one
	RetryAfter time.Duration // Retry-After of a 429 or 503, when given
	kind       error
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("tokenlease: %d %s: %s", e.Status, e.Code, e.Message)
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	return s
}

// Unwrap returns the sentinel of the error's code, so that errors.Is works.
func (e *APIError) Unwrap() error { return e.kind }

func newAPIError(status int, code, msg string) *APIError {
	e := &APIError{Status: status, Code: code, Message: msg}
	if k, ok := codeErrors[code]; ok {
		e.kind = k
	} else {
		e.kind = statusErrors[status]
	}
	if e.Code == "" {
		e.Code = "http_" + fmt.Sprint(status)
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}
