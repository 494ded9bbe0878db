package tokens

import "context"

// Caller is who makes a request, as the authentication layer found it.
type Caller struct {
	// Actor names the caller in leases and audit rows (an API key's name or a
	// JWT's subject); empty for sweeps and with AUTH=off, stored as NULL.
	Actor string
	// OwnLeasesOnly restricts unblock, keep-alive and lookups to the leases
	// this actor took itself (role client): another actor's live lease is
	// ErrForbidden, decided inside the statement that would change it.
	OwnLeasesOnly bool
}

type callerKey struct{}

// WithCaller returns ctx carrying c, for the service to record and enforce.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// callerOf returns the caller ctx carries; the zero Caller when none.
func callerOf(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

// actorArg is the caller's actor as a statement parameter: NULL when empty.
func actorArg(c Caller) *string {
	if c.Actor == "" {
		return nil
	}
	return &c.Actor
}
