package client

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Assignment is the answer of an assign: a token under a new lease.
type Assignment struct {
	Token          string    `json:"token"`
	LeaseID        int64     `json:"lease_id"`
	LeaseExpiresAt time.Time `json:"lease_expires_at"` // the server's clock
	AliveUntil     time.Time `json:"alive_until"`      // the server's clock
	Holder         string    `json:"holder,omitempty"`
}

// TokenInfo is a token as a lookup or a keep-alive shows it. Times are the
// server's clock; lease fields are set only while a lease is live.
type TokenInfo struct {
	Token          string    `json:"token,omitempty"`
	TokenFP        string    `json:"token_fp,omitempty"` // instead of Token for role reader
	State          string    `json:"state"`              // "free" or "assigned"
	AliveUntil     time.Time `json:"alive_until"`
	CreatedAt      time.Time `json:"created_at,omitzero"`
	LeaseID        int64     `json:"lease_id,omitempty"`
	LeaseExpiresAt time.Time `json:"lease_expires_at,omitzero"`
	Holder         string    `json:"holder,omitempty"`
}

// Stats are a pool's counts.
type Stats struct {
	Free     int64 `json:"free"`
	Assigned int64 `json:"assigned"`
	Total    int64 `json:"total"`
}

// ImportResult lists the values imported and those already live (left
// untouched).
type ImportResult struct {
	Imported []string `json:"imported"`
	Existing []string `json:"existing"`
}

// Duration is a time.Duration that reads the API's forms: a string in Go
// syntax or of seconds ("90s", "60"), or a JSON number of seconds. It
// writes Go syntax.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err := json.Unmarshal(b, &secs); err != nil {
			return fmt.Errorf("duration: want a string or a number, got %s", b)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) String() string { return time.Duration(d).String() }
