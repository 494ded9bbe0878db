package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/tokens"
)

// The seeds' routes (DESIGN section 10): clients written for the two
// systems this service replaces keep working unchanged, on pool default.
// The first seed was a NestJS service (errors {"statusCode", "message"}),
// the second a FastAPI one (answers are JSON strings, errors 400
// {"detail"}). Their bodies are read leniently, as theirs were: unknown
// fields are ignored. Unblock frees the live lease unfenced and keep-alive
// refreshes only alive_until, as those clients expect.
func registerSeedRoutes(r *gin.Engine, h *handlers) {
	t := r.Group("/token")
	// First seed.
	t.POST("/generate", h.nestGenerate)
	t.GET("/assign", h.nestAssign)
	t.POST("/unblock", h.nestRef(func(c *gin.Context, token string) error { return h.svc.Unblock(c.Request.Context(), "", token, nil) },
		http.StatusCreated, "Token unblocked", "Token not found or already unblocked"))
	t.DELETE("/delete", h.nestRef(func(c *gin.Context, token string) error { return h.svc.Delete(c.Request.Context(), "", token) },
		http.StatusOK, "Token deleted", "Token not found"))
	t.PUT("/keep-alive", h.nestRef(h.seedKeepAlive, http.StatusOK, "Token keep-alive extended", "Token not found"))
	// Second seed.
	t.POST("/generateToken", h.fastGenerate)
	t.GET("/acquireToken", h.fastAcquire)
	t.PUT("/keepAlive", h.fastRef(h.seedKeepAlive, "token keep-alive extended"))
	unblock := h.fastRef(func(c *gin.Context, token string) error { return h.svc.Unblock(c.Request.Context(), "", token, nil) }, "token unblocked")
	t.PUT("/unblock", unblock)
	t.PUT("/unblockToken", unblock)
	t.DELETE("/deleteToken", h.fastRef(func(c *gin.Context, token string) error { return h.svc.Delete(c.Request.Context(), "", token) }, "token deleted"))
	t.DELETE("/deleteExpiredToken", h.fastDeleteExpired)
}

func (h *handlers) seedKeepAlive(c *gin.Context, token string) error {
	_, err := h.svc.KeepAlive(c.Request.Context(), "", token, nil)
	return err
}

// seedBody reads a seed route's JSON object leniently.
type seedBody struct {
	Count json.RawMessage `json:"count"`
	Token json.RawMessage `json:"token"`
}

func readSeedBody(c *gin.Context) (seedBody, error) {
	var b seedBody
	raw, err := readBody(c, maxBody)
	if err != nil {
		return b, err
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return b, nil // every field missing
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return b, badRequest("request body must be a JSON object")
	}
	return b, nil
}

// seedToken is the non-empty string in field token, or "".
func (b seedBody) seedToken() string {
	var s string
	if json.Unmarshal(b.Token, &s) != nil {
		return ""
	}
	return s
}

// seedClassify is classify with the message as the seeds worded theirs:
// without the API's "invalid request: " prefix.
func seedClassify(err error) (int, string) {
	status, _, msg := classify(err)
	return status, strings.TrimPrefix(msg, tokens.ErrInvalidRequest.Error()+": ")
}

// forbiddenAsAPI answers a refusal of the caller's rights (a client on
// another caller's lease) as the authorisation layer answers every 401 and
// 403, also on the seeds' routes: the seeds had no credentials, so they have
// no shape for it, and one shape lets clients tell it from the seeds' own
// errors.
func forbiddenAsAPI(c *gin.Context, err error) bool {
	if !errors.Is(err, tokens.ErrForbidden) {
		return false
	}
	writeError(c, err)
	return true
}

// --- First seed (NestJS) -----------------------------------------------

type nestError struct {
	StatusCode int    `json:"statusCode"`
	Message    any    `json:"message"`
	Error      string `json:"error,omitempty"`
}

// nestBadRequest is a validation failure as NestJS's ValidationPipe shows it.
func nestBadRequest(c *gin.Context, messages ...string) {
	abortJSON(c, http.StatusBadRequest, nestError{http.StatusBadRequest, messages, "Bad Request"})
}

// nestFail answers an error without a seed-specific message.
func nestFail(c *gin.Context, err error) {
	if forbiddenAsAPI(c, err) {
		return
	}
	status, msg := seedClassify(err)
	if status == http.StatusBadRequest {
		nestBadRequest(c, msg)
		return
	}
	abortJSON(c, status, nestError{status, msg, http.StatusText(status)})
}

func (h *handlers) nestGenerate(c *gin.Context) {
	b, err := readSeedBody(c)
	if err != nil {
		nestFail(c, err)
		return
	}
	var n int
	if json.Unmarshal(b.Count, &n) != nil || n < 1 {
		nestBadRequest(c, "count must be a positive integer")
		return
	}
	created, err := h.svc.Generate(c.Request.Context(), "", n)
	if err != nil {
		nestFail(c, err)
		return
	}
	writeJSON(c, http.StatusCreated, generateResponse{Tokens: created})
}

type seedToken struct {
	Token string `json:"token"`
}

func (h *handlers) nestAssign(c *gin.Context) {
	lease, err := h.assignLease(c, tokens.AssignRequest{}, 0)
	switch {
	case errors.Is(err, tokens.ErrNoFreeToken):
		abortJSON(c, http.StatusNotFound, nestError{StatusCode: http.StatusNotFound, Message: "No available tokens"})
	case err != nil:
		nestFail(c, err)
	default:
		writeJSON(c, http.StatusOK, seedToken{lease.Token})
	}
}

type seedMessage struct {
	Message string `json:"message"`
}

// nestRef serves a route of the first seed that takes {"token"}: ok
// answers with status and okMsg, a missing token (or a free one, for
// unblock) with 404 and notFoundMsg.
func (h *handlers) nestRef(do func(*gin.Context, string) error, status int, okMsg, notFoundMsg string) gin.HandlerFunc {
	return func(c *gin.Context) {
		b, err := readSeedBody(c)
		if err != nil {
			nestFail(c, err)
			return
		}
		token := b.seedToken()
		if token == "" {
			nestBadRequest(c, "token should not be empty", "token must be a string")
			return
		}
		err = do(c, token)
		switch {
		case errors.Is(err, tokens.ErrNotFound), errors.Is(err, tokens.ErrNotAssigned):
			abortJSON(c, http.StatusNotFound, nestError{StatusCode: http.StatusNotFound, Message: notFoundMsg})
		case err != nil:
			nestFail(c, err)
		default:
			writeJSON(c, status, seedMessage{okMsg})
		}
	}
}

// --- Second seed (FastAPI) ---------------------------------------------

type fastError struct {
	Detail string `json:"detail"`
}

// fastFail answers err as the second seed did: 400 {"detail"} for every
// refusal; 5xx keep their status.
func fastFail(c *gin.Context, err error) {
	if forbiddenAsAPI(c, err) {
		return
	}
	status, msg := seedClassify(err)
	switch {
	case errors.Is(err, tokens.ErrNotFound):
		msg = "token not found"
	case errors.Is(err, tokens.ErrNotAssigned):
		msg = "token is not assigned"
	case errors.Is(err, tokens.ErrNoFreeToken):
		msg = "No available tokens"
	}
	if status < 500 {
		status = http.StatusBadRequest
	}
	abortJSON(c, status, fastError{msg})
}

func (h *handlers) fastGenerate(c *gin.Context) {
	if _, err := h.svc.Generate(c.Request.Context(), "", 1); err != nil {
		fastFail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, "token successfully generated")
}

func (h *handlers) fastAcquire(c *gin.Context) {
	lease, err := h.assignLease(c, tokens.AssignRequest{}, 0)
	if err != nil {
		fastFail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, seedToken{lease.Token})
}

// fastRef serves a route of the second seed that takes {"token"}.
func (h *handlers) fastRef(do func(*gin.Context, string) error, okMsg string) gin.HandlerFunc {
	return func(c *gin.Context) {
		b, err := readSeedBody(c)
		if err == nil && b.seedToken() == "" {
			err = badRequest("token is required")
		}
		if err == nil {
			err = do(c, b.seedToken())
		}
		if err != nil {
			fastFail(c, err)
			return
		}
		writeJSON(c, http.StatusOK, okMsg)
	}
}

// seedSweepBatches bounds the work of one deleteExpiredToken: the River
// sweep goes on with the rest.
const (
	seedSweepBatch   = 1000
	seedSweepBatches = 10
)

func (h *handlers) fastDeleteExpired(c *gin.Context) {
	for range seedSweepBatches {
		swept, err := h.svc.SweepDeadTokens(c.Request.Context(), seedSweepBatch)
		if err != nil {
			fastFail(c, err)
			return
		}
		if swept.Most < seedSweepBatch {
			break
		}
	}
	writeJSON(c, http.StatusOK, "expired tokens deleted")
}
