package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Fingerprint is a token value's token_fp: the first 16 hex characters of
// its SHA-256. It identifies a token across events and lookups without
// revealing it.
func Fingerprint(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:8])
}

// RedactedData is the event's JSON without the token's value.
func (e Event) RedactedData() []byte {
	b, _ := json.Marshal(redactedEventData{
		Pos: e.Pos.String(), Kind: e.Kind, TokenFP: Fingerprint(e.Token), LeaseID: e.LeaseID, Holder: e.Holder,
		At: e.At.UTC().Format(timeLayout),
	})
	return b
}

type redactedEventData struct {
	Pos     string  `json:"pos"`
	Kind    string  `json:"kind"`
	TokenFP string  `json:"token_fp"`
	LeaseID *int64  `json:"lease_id,omitempty"`
	Holder  *string `json:"holder,omitempty"`
	At      string  `json:"at"`
}
