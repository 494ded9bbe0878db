package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/logging"
)

// requestIDHeader carries a request's id both ways (X-Request-ID), spelt in
// the canonical form so that header lookups need not canonicalise it.
const requestIDHeader = "X-Request-Id"

// maxRequestID bounds an id taken from the caller.
const maxRequestID = 128

// Access logs: every request at debug; at info one in accessSample, plus
// every 5xx and every request slower than accessSlow (long polls and
// streams included: each takes that long, so they stay few).
const (
	accessSample = 100
	accessSlow   = time.Second
)

var (
	// requestIDPrefix makes this process's ids unique among pods; a counter
	// makes them unique within it, at no cost of randomness per request.
	requestIDPrefix = newRequestIDPrefix()
	requestSeq      atomic.Uint64
	accessSeq       atomic.Uint64 // requests answered, for the sample
)

func newRequestIDPrefix() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:]) + "-"
}

// requestLog gives every request an id (the caller's X-Request-ID when it
// is a sane token, else a new one), echoes it in the answer, puts it in the
// request's context (every line logged with that context carries it, and
// error bodies repeat it), and writes the access log. The log names the
// route template, never the path, which may hold a token.
func requestLog(c *gin.Context) {
	start := time.Now()
	var id string
	if v := c.Request.Header[requestIDHeader]; len(v) > 0 && saneRequestID(v[0]) {
		id = v[0]
	} else {
		id = newRequestID()
	}
	c.Writer.Header()[requestIDHeader] = []string{id}
	ctx := logging.WithRequestID(c.Request.Context(), id)
	c.Request = c.Request.WithContext(ctx)
	c.Next()

	d := time.Since(start)
	status := c.Writer.Status()
	level := slog.LevelDebug
	if status >= 500 || d >= accessSlow || accessSampled() {
		level = slog.LevelInfo
	}
	if !slog.Default().Enabled(ctx, level) {
		return
	}
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	slog.LogAttrs(ctx, level, "request",
		slog.String("method", c.Request.Method), slog.String("route", route),
		slog.Int("status", status), slog.Duration("duration", d))
}

// newRequestID is this process's prefix and the next number, in base 36.
func newRequestID() string {
	var buf [48]byte
	b := append(buf[:0], requestIDPrefix...)
	return string(strconv.AppendUint(b, requestSeq.Add(1), 36))
}

// accessSampled picks one request in accessSample for the info log.
func accessSampled() bool { return accessSeq.Add(1)%accessSample == 0 }

// saneRequestID accepts 1 to maxRequestID visible ASCII characters: the id
// goes into headers and log lines as it is.
func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}
