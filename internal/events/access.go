package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Access is what the caller of a stream may see, set by the HTTP layer's
// authorisation on the request's context.
type Access struct {
	// Redact replaces every token value by its fingerprint (token_fp).
	Redact bool
	// ResumeWindow, when positive, refuses a resume whose first missed
	// event is older than this: a deep replay of the log is for roles that
	// may read token values.
	ResumeWindow time.Duration
}

type accessKey struct{}

// WithAccess returns ctx carrying a stream's access.
func WithAccess(ctx context.Context, a Access) context.Context {
	return context.WithValue(ctx, accessKey{}, a)
}

func accessOf(ctx context.Context) Access {
	a, _ := ctx.Value(accessKey{}).(Access)
	return a
}

// Fingerprint is a token value's token_fp: the first 16 hex characters of
// its SHA-256. It identifies a token across events and lookups without
// revealing it.
func Fingerprint(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:8])
}

// redactedData is the event's JSON without the token's value.
func (e Event) redactedData() []byte {
	b, _ := json.Marshal(redactedEventData{
		Kind: e.Kind, TokenFP: Fingerprint(e.Token), LeaseID: e.LeaseID, Holder: e.Holder,
		At: e.At.UTC().Format(timeLayout),
	})
	return b
}

type redactedEventData struct {
	Kind    string  `json:"kind"`
	TokenFP string  `json:"token_fp"`
	LeaseID *int64  `json:"lease_id,omitempty"`
	Holder  *string `json:"holder,omitempty"`
	At      string  `json:"at"`
}
