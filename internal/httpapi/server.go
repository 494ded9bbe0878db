package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/tokens"
)

// Waiter assigns a token, waiting up to wait (which may be zero) for one to
// be freed when none is free now (*longpoll.Waiter). A lease it takes for a
// client that has gone is released, not returned.
type Waiter interface {
	AssignWait(ctx context.Context, req tokens.AssignRequest, wait time.Duration) (tokens.Lease, error)
}

// Options are the collaborators of the API besides the service.
type Options struct {
	// Ready reports whether the pod can serve: the database answers and the
	// migrations are applied.
	Ready func(ctx context.Context) error
	// Waiter serves every assign; without one, wait is accepted but not used.
	Waiter Waiter
	// Events feeds GET /tokens/events; without it the route answers 404.
	Events EventSource
	// Stream tunes the event stream.
	Stream StreamOptions
}

type handlers struct {
	svc  *tokens.Service
	opts Options
}

func init() { gin.SetMode(gin.ReleaseMode) }

// NewHandler returns the HTTP handler of the API.
func NewHandler(svc *tokens.Service, opts Options) http.Handler {
	h := &handlers{svc: svc, opts: opts}
	r := gin.New()
	// Imported values may hold "/", "?" or spaces: route on the raw path so
	// that a percent-encoded value stays one path segment, then unescape it.
	r.UseRawPath = true
	r.UnescapePathValues = true
	r.RemoveExtraSlash = false
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.Use(recovery, requestLog)
	r.NoRoute(func(c *gin.Context) { writeError(c, errRouteNotFound) })
	r.NoMethod(func(c *gin.Context) { writeError(c, errMethodNotAllowed) })

	r.GET("/healthz", func(c *gin.Context) { writeJSON(c, http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", h.ready)

	registerPools(r, h)
	// The routes of section 2, for pool default and under every pool.
	h.registerTokens(r.Group("/tokens"))
	h.registerTokens(r.Group("/pools/:pool/tokens"))
	if opts.Events != nil {
		r.GET("/events", h.stream(h.queryPools))
	}
	return r
}

// registerTokens adds the token routes of one pool (the path's, or default).
func (h *handlers) registerTokens(t *gin.RouterGroup) {
	t.POST("/generate", h.generate)
	t.POST("/import", h.importTokens)
	t.POST("/assign", h.assign)
	t.GET("/assign", h.assign)
	t.POST("/unblock", h.unblock)
	t.DELETE("/delete", h.deleteByBody)
	t.POST("/keep-alive", h.keepAlive)
	t.PUT("/keep-alive", h.keepAlive)
	t.GET("/stats", h.stats)
	if h.opts.Events != nil {
		t.GET("/events", h.stream(h.routePool))
	}
	t.GET("/:token", h.get)
	t.DELETE("/:token", h.deleteByPath)
}

// poolOf is the pool a token route addresses: the path's, or "" (default)
// under /tokens.
func poolOf(c *gin.Context) string { return c.Param("pool") }

func (h *handlers) ready(c *gin.Context) {
	if h.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		if err := h.opts.Ready(ctx); err != nil {
			slog.WarnContext(ctx, "not ready", "error", err)
			writeError(c, errNotReady)
			return
		}
	}
	writeJSON(c, http.StatusOK, gin.H{"status": "ready"})
}

// recovery turns a panic into a JSON 500 and keeps the pod serving.
func recovery(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			slog.ErrorContext(c.Request.Context(), "handler panic", "panic", p, "route", c.FullPath())
			writeError(c, errInternal)
		}
	}()
	c.Next()
}

// requestLog logs every request at debug: the hot path is too hot for info.
func requestLog(c *gin.Context) {
	if !slog.Default().Enabled(c.Request.Context(), slog.LevelDebug) {
		c.Next()
		return
	}
	start := time.Now()
	c.Next()
	slog.DebugContext(c.Request.Context(), "request",
		"method", c.Request.Method, "route", c.FullPath(), "status", c.Writer.Status(), "duration", time.Since(start))
}
