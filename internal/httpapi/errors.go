package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/events"
	"github.com/tokenlease/tokenlease/internal/tokens"
)

// apiError is an error the HTTP layer raises itself, before the domain.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

var (
	errBodyTooLarge     = &apiError{http.StatusRequestEntityTooLarge, "payload_too_large", "request body is too large"}
	errRouteNotFound    = &apiError{http.StatusNotFound, "route_not_found", "no such route"}
	errMethodNotAllowed = &apiError{http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route"}
	errInternal         = &apiError{http.StatusInternalServerError, "internal", "internal error"}
	// errNotReady never says why: the cause may name the database's address,
	// user or name, which are no client's business (the pod logs it).
	errNotReady = &apiError{http.StatusServiceUnavailable, "unavailable", "the service is not ready"}
)

// retryAfter is the Retry-After of every 503: the condition (a shutdown, a
// database away) is expected to pass, and another pod may answer at once.
const retryAfter = "1"

// errorTable maps each sentinel of the domain and of the events layer to its
// status and stable code. With the apiErrors above it is the only place
// where errors become HTTP.
var errorTable = []struct {
	err    error
	status int
	code   string
}{
	{tokens.ErrInvalidRequest, http.StatusBadRequest, "invalid_request"},
	{tokens.ErrNotFound, http.StatusNotFound, "not_found"},
	{tokens.ErrNoFreeToken, http.StatusNotFound, "no_free_token"},
	{tokens.ErrNotAssigned, http.StatusConflict, "not_assigned"},
	{tokens.ErrLeaseMismatch, http.StatusConflict, "lease_mismatch"},
	{tokens.ErrPoolFull, http.StatusConflict, "pool_full"},
	{tokens.ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
	{tokens.ErrPoolNotFound, http.StatusNotFound, "pool_not_found"},
	{tokens.ErrPoolNotEmpty, http.StatusConflict, "pool_not_empty"},
	{tokens.ErrPoolProtected, http.StatusConflict, "pool_protected"},
	{tokens.ErrForbidden, http.StatusForbidden, "forbidden"},
	{events.ErrClosed, http.StatusServiceUnavailable, "unavailable"},
	{events.ErrBadPosition, http.StatusBadRequest, "invalid_request"},
	{events.ErrUnknownKind, http.StatusBadRequest, "invalid_request"},
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError answers with the status and code of err.
func writeError(c *gin.Context, err error) {
	status, code, msg := classify(err)
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, tokens.ErrUnavailable) ||
		errors.Is(err, events.ErrClosed) || errors.Is(err, errNotReady):
		// The client left, or the pod is shutting down or not ready (the
		// readiness probe logs why): nothing went wrong here.
		slog.DebugContext(c.Request.Context(), "request ended early", "route", c.FullPath(), "error", err)
	case status >= 500:
		slog.ErrorContext(c.Request.Context(), "request failed", "method", c.Request.Method, "route", c.FullPath(), "error", err)
	}
	if status == http.StatusServiceUnavailable {
		c.Header("Retry-After", retryAfter)
	}
	abortJSON(c, status, errorBody{errorDetail{Code: code, Message: msg}})
}

func classify(err error) (status int, code, msg string) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, ae.code, ae.msg
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e.status, e.code, err.Error()
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable, "unavailable", "the request was cancelled or timed out"
	}
	return http.StatusInternalServerError, "internal", "internal error"
}

// abortJSON ends the handler chain with a JSON answer.
func abortJSON(c *gin.Context, status int, v any) {
	c.Abort()
	writeJSON(c, status, v)
}
