package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/config"
	"github.com/tokenlease/tokenlease/internal/tokens"
)

// Body limits: 1 MiB for every request, 8 MiB for import.
const (
	maxBody       = 1 << 20
	maxImportBody = 8 << 20
)

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", tokens.ErrInvalidRequest, fmt.Sprintf(format, args...))
}

// readBody reads the whole body up to limit; a larger body is errBodyTooLarge.
func readBody(c *gin.Context, limit int64) ([]byte, error) {
	if c.Request.ContentLength > limit {
		return nil, errBodyTooLarge
	}
	if c.Request.Body == nil || c.Request.Body == http.NoBody {
		return nil, nil // e.g. an assign without a body: nothing to read
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, errBodyTooLarge
	}
	if err != nil {
		return nil, badRequest("cannot read request body: %v", err)
	}
	return b, nil
}

// decodeJSON decodes one JSON object into dst strictly: unknown fields, wrong
// types and trailing data are refused. An empty body is allowed only when
// optional is set (dst then stays as it is).
func decodeJSON(c *gin.Context, limit int64, optional bool, dst any) error {
	b, err := readBody(c, limit)
	if err != nil {
		return err
	}
	return decodeJSONBytes(b, optional, dst)
}

// decodeJSONBytes is decodeJSON on a body already read.
func decodeJSONBytes(b []byte, optional bool, dst any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		if optional {
			return nil
		}
		return badRequest("request body must be a JSON object")
	}
	// encoding/json would replace invalid UTF-8 by U+FFFD and go on: a value
	// stored or looked up would silently differ from the one sent.
	if !utf8.Valid(b) {
		return badRequest("request body is not valid UTF-8")
	}
	// So would an escaped surrogate that is not half of a pair ("\ud800").
	if at := loneSurrogate(b); at >= 0 {
		return badRequest("malformed JSON at byte %d: \\u escape of a lone UTF-16 surrogate", at)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, tokens.ErrInvalidRequest) { // from a field's own decoder
			return err
		}
		return badRequest("%s", describeJSONError(err))
	}
	if dec.More() {
		return badRequest("request body must hold exactly one JSON object")
	}
	return nil
}

// loneSurrogate returns the offset of the first \uXXXX escape in b that
// names a UTF-16 surrogate without its other half (a high surrogate not
// followed by an escaped low one, or a low one alone), or -1. Backslashes
// occur only inside JSON strings, so no tracking of strings is needed; what
// is not JSON at all is left to the decoder.
func loneSurrogate(b []byte) int {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		r, ok := escapedRune(b[i:])
		if !ok {
			i++ // \\, \", \n ...: skip the escaped byte
			continue
		}
		switch {
		case utf16.IsSurrogate(r) && r < 0xdc00: // high: a low one must follow
			if low, ok := escapedRune(b[i+6:]); !ok || low < 0xdc00 || low > 0xdfff {
				return i
			}
			i += 11
		case utf16.IsSurrogate(r): // low without a high one before it
			return i
		default:
			i += 5
		}
	}
	return -1
}

// escapedRune decodes a \uXXXX escape at the start of b.
func escapedRune(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[2:6]), 16, 16)
	if err != nil {
		return 0, false
	}
	return rune(v), true
}

func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return "request body must be a JSON object"
		}
		return fmt.Sprintf("field %q must be %s, got JSON %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of input"
	default:
		return "invalid JSON: " + err.Error()
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "int32":
		return "an integer"
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "ptr", "struct":
		return "an object"
	default:
		return "of another type"
	}
}

// durationField is a duration in a JSON body: a string in Go syntax or of
// seconds ("90s", "250ms", "60"), or a JSON number of seconds.
type durationField struct {
	set bool
	d   time.Duration
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *durationField) UnmarshalJSON(b []byte) error {
	var err error
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err = json.Unmarshal(b, &s); err == nil {
			f.d, err = config.ParseDuration(s)
		}
	case string(b) == "null":
		return nil
	default:
		var secs float64
		if err = json.Unmarshal(b, &secs); err == nil {
			f.d, err = config.DurationFromSeconds(secs)
		}
	}
	if err != nil {
		return badRequest("ttl: %v", err)
	}
	f.set = true
	return nil
}
