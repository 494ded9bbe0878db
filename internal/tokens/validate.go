package tokens

import (
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of the API, shared by the HTTP layer and the service.
const (
	MaxValueBytes     = 512
	MaxHolderChars    = 200
	MaxBatch          = 10000
	MinLeaseTTL       = 100 * time.Millisecond
	generatedTokenLen = 16 // bytes of crypto/rand per generated token: 128 bits
)

// reservedValues are the fixed words under /tokens/ (plus the dot segments
// that HTTP clients rewrite), refused as token values so that every token can
// be looked up by GET /tokens/{token}.
var reservedValues = map[string]bool{
	"stats": true, "events": true, "assign": true, "generate": true, "import": true,
	"unblock": true, "delete": true, "keep-alive": true, ".": true, "..": true,
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}

// ValidateValue checks a token value as given to import or to any lookup:
// 1..512 bytes of valid UTF-8 without control characters, not a route word.
func ValidateValue(v string) error {
	switch {
	case v == "":
		return invalid("token must not be empty")
	case len(v) > MaxValueBytes:
		return invalid("token is %d bytes, at most %d are allowed", len(v), MaxValueBytes)
	case !utf8.ValidString(v):
		return invalid("token is not valid UTF-8")
	case hasControl(v):
		return invalid("token contains control characters")
	case reservedValues[v]:
		return invalid("token %q is a reserved route word", v)
	}
	return nil
}

// ValidateHolder checks a lease holder: 1..200 characters, no control characters.
func ValidateHolder(h string) error {
	switch n := utf8.RuneCountInString(h); {
	case h == "":
		return invalid("holder must not be empty")
	case !utf8.ValidString(h):
		return invalid("holder is not valid UTF-8")
	case n > MaxHolderChars:
		return invalid("holder is %d characters, at most %d are allowed", n, MaxHolderChars)
	case hasControl(h):
		return invalid("holder contains control characters")
	}
	return nil
}

// ValidateLeaseID checks a presented fencing token.
func ValidateLeaseID(id int64) error {
	if id <= 0 {
		return invalid("lease_id must be a positive integer")
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}
