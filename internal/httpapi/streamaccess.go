package httpapi

import (
	"context"
	"time"
)

// streamAccess is what the caller of an event stream may see, set by the
// authorisation middleware on the request's context.
type streamAccess struct {
	// Redact replaces every token value by its fingerprint (token_fp).
	Redact bool
	// ResumeWindow, when positive, refuses a resume whose first missed
	// event is older than this: a deep replay of the log is for roles that
	// may read token values.
	ResumeWindow time.Duration
}

type streamAccessKey struct{}

func withStreamAccess(ctx context.Context, a streamAccess) context.Context {
	return context.WithValue(ctx, streamAccessKey{}, a)
}

func streamAccessOf(ctx context.Context) streamAccess {
	a, _ := ctx.Value(streamAccessKey{}).(streamAccess)
	return a
}
