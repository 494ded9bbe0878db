package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/auth"
	"github.com/tokenlease/tokenlease/internal/events"
	"github.com/tokenlease/tokenlease/internal/logging"
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
	// errTooManyStreams refuses a stream past MAX_STREAMS: another pod, or
	// this one a little later, may serve it.
	errTooManyStreams = &apiError{http.StatusServiceUnavailable, "unavailable", "this pod serves as many event streams as it may; retry later or on another pod"}
)

// retryAfterDefault is the Retry-After of every 503 that says no other: the
// condition (a shutdown, a database away) is expected to pass, and another
// pod may answer at once.
const retryAfterDefault = "1"

// errorTable maps each sentinel of the domain, of the events layer and of
// authentication to its status and stable code (and the headers that go
// with it). With the apiErrors above it is the only place where errors
// become HTTP.
var errorTable = []struct {
	err    error
	status int
	code   string
	header func(c *gin.Context, err error)
}{
	{tokens.ErrInvalidRequest, http.StatusBadRequest, "invalid_request", nil},
	{tokens.ErrNotFound, http.StatusNotFound, "not_found", nil},
	{tokens.ErrNoFreeToken, http.StatusNotFound, "no_free_token", nil},
	{tokens.ErrNotAssigned, http.StatusConflict, "not_assigned", nil},
	{tokens.ErrLeaseMismatch, http.StatusConflict, "lease_mismatch", nil},
	{tokens.ErrPoolFull, http.StatusConflict, "pool_full", nil},
	{tokens.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", nil},
	{tokens.ErrPoolNotFound, http.StatusNotFound, "pool_not_found", nil},
	{tokens.ErrPoolNotEmpty, http.StatusConflict, "pool_not_empty", nil},
	{tokens.ErrPoolProtected, http.StatusConflict, "pool_protected", nil},
	{tokens.ErrForbidden, http.StatusForbidden, "forbidden", nil},
	{events.ErrClosed, http.StatusServiceUnavailable, "unavailable", nil},
	{events.ErrBadPosition, http.StatusBadRequest, "invalid_request", nil},
	{events.ErrUnknownKind, http.StatusBadRequest, "invalid_request", nil},
	{auth.ErrUnauthenticated, http.StatusUnauthorized, "unauthenticated", challenge},
	{auth.ErrForbidden, http.StatusForbidden, "forbidden", nil},
	{auth.ErrRateLimited, http.StatusTooManyRequests, "rate_limited", retryAfter},
	{auth.ErrInvalid, http.StatusBadRequest, "invalid_request", nil},
	{auth.ErrKeyExists, http.StatusConflict, "key_exists", nil},
	{auth.ErrKeyNotFound, http.StatusNotFound, "key_not_found", nil},
}

// challenge names the scheme a 401 wants.
func challenge(c *gin.Context, _ error) { c.Header("WWW-Authenticate", `Bearer realm="tokenlease"`) }

// retryAfter says in whole seconds (at least 1) when the bucket has room.
func retryAfter(c *gin.Context, err error) {
	secs := 1
	var rl *auth.RateLimitedError
	if errors.As(err, &rl) {
		secs = max(1, int(math.Ceil(rl.RetryAfter.Seconds())))
	}
	c.Header("Retry-After", strconv.Itoa(secs))
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"` // to find the request's log lines
}

// outageLog logs requests that failed because the database does not answer:
// during an outage every request does, and one line each would flood the log.
var outageLog = newThrottledLog(2, 3)

// streamCapLog logs streams refused past MAX_STREAMS, as rarely.
var streamCapLog = newThrottledLog(2, 3)

// writeError answers with the status and code of err.
func writeError(c *gin.Context, err error) {
	status, code, msg := classify(err)
	for _, e := range errorTable {
		if e.header != nil && errors.Is(err, e.err) {
			e.header(c, err)
			break
		}
	}
	ctx := c.Request.Context()
	switch {
	case errors.Is(err, errTooManyStreams):
		streamCapLog.warn(ctx, "event stream refused: MAX_STREAMS streams are open")
	case tokens.Unavailable(err) && ctx.Err() == nil:
		outageLog.warn(ctx, "request failed: the database is unavailable",
			"method", c.Request.Method, "route", c.FullPath(), "error", err)
	case errors.Is(err, context.Canceled) || errors.Is(err, tokens.ErrUnavailable) ||
		errors.Is(err, events.ErrClosed) || errors.Is(err, errNotReady):
		// The client left, or the pod is shutting down or not ready (the
		// readiness probe logs why): nothing went wrong here.
		slog.DebugContext(ctx, "request ended early", "route", c.FullPath(), "error", err)
	case status >= 500:
		slog.ErrorContext(ctx, "request failed", "method", c.Request.Method, "route", c.FullPath(), "error", err)
	}
	if status == http.StatusServiceUnavailable && c.Writer.Header().Get("Retry-After") == "" {
		c.Header("Retry-After", retryAfterDefault)
	}
	abortJSON(c, status, errorBody{errorDetail{Code: code, Message: msg, RequestID: logging.RequestID(ctx)}})
}

// statusClientClosed is nginx's non-standard status for a request whose
// client went away before the answer.
const statusClientClosed = 499

func classify(err error) (status int, code, msg string) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, ae.code, ae.msg
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			if e.err == tokens.ErrUnavailable {
				// The cause may name the database's address: keep it in the log.
				return e.status, e.code, "the service cannot serve now; retry later"
			}
			return e.status, e.code, err.Error()
		}
	}
	if errors.Is(err, context.Canceled) {
		// The client hung up: nobody reads the answer, but the access log and
		// tokenlease_http_requests_total must not count it as the pod's 5xx
		// (the 503 alert would fire for impatient clients).
		return statusClientClosed, "client_closed", "the client closed the request"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable, "unavailable", "the request timed out"
	}
	return http.StatusInternalServerError, "internal", "internal error"
}

// abortJSON ends the handler chain with a JSON answer.
func abortJSON(c *gin.Context, status int, v any) {
	c.Abort()
	writeJSON(c, status, v)
}
