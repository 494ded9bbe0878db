// Package logging builds the process's slog logger (LOG_FORMAT, LOG_LEVEL)
// and carries a request's id in its context, so that every line logged with
// that context names the request. It imports no package of the service.
package logging

import (
	"context"
	"io"
	"log/slog"
)

// Formats are the values of LOG_FORMAT.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// RequestIDKey is the attribute that names a line's request.
const RequestIDKey = "request_id"

// New returns a logger writing to w in format (text or json) from level up;
// lines logged with a request's context carry its request_id.
func New(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if format == FormatJSON {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(WithRequestIDs(h))
}

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request id id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithRequestIDs wraps h so that a record logged with a request's context
// gets its request_id.
func WithRequestIDs(h slog.Handler) slog.Handler { return requestIDs{h} }

type requestIDs struct{ slog.Handler }

func (h requestIDs) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String(RequestIDKey, id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDs{h.Handler.WithAttrs(attrs)}
}

func (h requestIDs) WithGroup(name string) slog.Handler {
	return requestIDs{h.Handler.WithGroup(name)}
}
