package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/apidoc"
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
	// Auth says who may call what; its zero value is AUTH=off.
	Auth Auth
	// RiverUI serves River's web UI under /admin/river; without it the
	// routes are not registered.
	RiverUI http.Handler
	// Unobserved drops the request ids, access logs and request metrics:
	// for benchmarks only (BENCH_UNOBSERVED), to measure what they cost.
	Unobserved bool
}

type handlers struct {
	svc   *tokens.Service
	opts  Options
	words routeWords // the fixed routes under /tokens/
	// openStreams counts the event streams being served, on every route.
	openStreams atomic.Int64
}

func init() { gin.SetMode(gin.ReleaseMode) }

// NewHandler returns the HTTP handler of the API.
func NewHandler(svc *tokens.Service, opts Options) http.Handler {
	h := &handlers{svc: svc, opts: opts, words: routeWords{}}
	r := gin.New()
	// Imported values may hold "/", "?" or spaces: route on the raw path so
	// that a percent-encoded value stays one path segment, then unescape it.
	r.UseRawPath = true
	r.UnescapePathValues = true
	r.RemoveExtraSlash = false
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	if opts.Unobserved {
		r.Use(recovery, h.authenticate)
	} else {
		r.Use(requestLog, observe, recovery, h.authenticate)
	}
	r.NoRoute(func(c *gin.Context) { writeError(c, errRouteNotFound) })
	r.NoMethod(h.methodNotAllowed)

	r.GET("/healthz", func(c *gin.Context) { writeJSON(c, http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", h.ready)
	apidoc.Register(r) // /openapi.json, /docs

	registerPools(r, h)
	words := h.words
	words.add("POST", "generate", h.generate)
	words.add("POST", "import", h.importTokens)
	words.add("POST", "assign", h.assign)
	words.add("GET", "assign", h.assign)
	words.add("POST", "unblock", h.unblock)
	words.add("DELETE", "delete", h.deleteByBody)
	words.add("POST", "keep-alive", h.keepAlive)
	words.add("PUT", "keep-alive", h.keepAlive)
	words.add("GET", "stats", h.stats)
	if opts.Events != nil {
		words.add("GET", "events", h.stream(h.routePool))
		r.GET("/events", h.stream(h.queryPools))
	}
	// The routes of section 2, for pool default and under every pool.
	for _, t := range []*gin.RouterGroup{r.Group("/tokens"), r.Group("/pools/:pool/tokens")} {
		words.register(t)
		// GET and DELETE of a route word reach these routes too: they
		// answer 405 (no token has a route word as its value).
		t.GET("/:token", h.get)
		t.DELETE("/:token", h.deleteByPath)
	}
	registerSeedRoutes(r, h)
	h.adminKeyRoutes(r)
	if opts.RiverUI != nil {
		mountRiverUI(r, opts.RiverUI)
	}
	return r
}

// routeWords are the fixed routes under /tokens/, by word and method.
type routeWords map[string]map[string]gin.HandlerFunc

func (w routeWords) add(method, word string, h gin.HandlerFunc) {
	if w[word] == nil {
		w[word] = map[string]gin.HandlerFunc{}
	}
	w[word][method] = h
}

// register adds every route word to g under its methods.
func (w routeWords) register(g *gin.RouterGroup) {
	for word, methods := range w {
		for m, h := range methods {
			g.Handle(m, "/"+word, h)
		}
	}
}

// allow lists the methods of a route word; ok is false for any other word.
func (w routeWords) allow(word string) (allow string, ok bool) {
	methods, ok := w[word]
	if !ok {
		return "", false
	}
	allowed := make([]string, 0, len(methods))
	for m := range methods {
		allowed = append(allowed, m)
	}
	slices.Sort(allowed)
	return strings.Join(allowed, ", "), true
}

// methodNotAllowed answers 405; under a route word, Allow lists the word's
// own methods (gin's would add those of /tokens/{token}).
func (h *handlers) methodNotAllowed(c *gin.Context) {
	if !h.routeWordMethod(c) {
		writeError(c, errMethodNotAllowed)
	}
}

// routeWordMethod answers 405 when /tokens/{token} names a route word, and
// reports whether it did.
func (h *handlers) routeWordMethod(c *gin.Context) bool {
	allow, ok := h.words.allow(strings.TrimPrefix(c.Request.URL.Path, "/tokens/"))
	if !ok {
		return false
	}
	c.Header("Allow", allow)
	writeError(c, errMethodNotAllowed)
	return true
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
