package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/tokens"
)

// The hot path (assign and unblock) answers without reflection: the bodies
// are appended byte by byte into pooled buffers, exactly as writeJSON would
// write them (no HTML escaping, a trailing newline), and the usual unblock
// body is read by a small parser that hands anything unusual to the strict
// decoder. The output and the accepted inputs are those of the general path
// (hotpath_test.go compares them); only the cost differs.

// jsonContentType is shared by every response: net/http never writes into a
// header's value slice.
var jsonContentType = []string{"application/json; charset=utf-8"}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writeBody answers with a ready JSON body.
func writeBody(c *gin.Context, status int, body []byte) {
	c.Writer.Header()["Content-Type"] = jsonContentType
	c.Status(status)
	if _, err := c.Writer.Write(body); err != nil {
		slog.DebugContext(c.Request.Context(), "write response", "error", err)
	}
}

// writeAssigned answers an assign: the bytes of writeJSON(assignResponse).
func writeAssigned(c *gin.Context, l tokens.Lease) {
	bp := bufPool.Get().(*[]byte)
	b := append((*bp)[:0], `{"token":`...)
	b = appendJSONString(b, l.Token)
	b = append(b, `,"lease_id":`...)
	b = strconv.AppendInt(b, l.LeaseID, 10)
	b = append(b, `,"lease_expires_at":"`...)
	b = l.LeaseExpiresAt.UTC().AppendFormat(b, apiTimeLayout)
	b = append(b, `","alive_until":"`...)
	b = l.AliveUntil.UTC().AppendFormat(b, apiTimeLayout)
	b = append(b, '"')
	if l.Holder != "" {
		b = append(b, `,"holder":`...)
		b = appendJSONString(b, l.Holder)
	}
	b = append(b, "}\n"...)
	writeBody(c, 200, b)
	*bp = b
	bufPool.Put(bp)
}

// writeUnblocked answers an unblock: the bytes of writeJSON(unblockResponse).
func writeUnblocked(c *gin.Context, token string) {
	bp := bufPool.Get().(*[]byte)
	b := append((*bp)[:0], `{"token":`...)
	b = appendJSONString(b, token)
	b = append(b, `,"state":"free"}`+"\n"...)
	writeBody(c, 200, b)
	*bp = b
	bufPool.Put(bp)
}

// appendJSONString appends s as a JSON string the way writeJSON's encoder
// does (HTML characters left as they are). Printable ASCII without quote or
// backslash, the whole alphabet of generated tokens, is copied as it is;
// anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(s) // a string always encodes
			return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// decodeUnblockRef reads the body of unblock: the common shape
// {"token": "<printable ASCII>", "lease_id": <positive integer>} (either key
// optional, any order, any JSON whitespace) by hand; every other body, valid
// or not, by decodeRef, so that results and error messages stay its own.
func decodeUnblockRef(c *gin.Context) (tokenRef, error) {
	b, err := readBody(c, maxBody)
	if err != nil {
		return tokenRef{}, err
	}
	if token, lease, hasLease, ok := parseRefFast(b); ok {
		ref := tokenRef{Token: &token}
		if hasLease {
			ref.LeaseID = &lease
		}
		return ref, nil
	}
	return decodeRefFrom(b, true)
}

// parseRefFast parses the common unblock body; ok is false for anything it
// does not handle (the caller then uses the strict decoder): escapes or
// non-ASCII in the token, lease ids that are not plain positive integers,
// null, unknown or repeated keys, a missing token, trailing data.
func parseRefFast(b []byte) (token string, lease int64, hasLease, ok bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", 0, false, false
	}
	i = skipWS(b, i+1)
	var haveToken bool
	for {
		if i >= len(b) || b[i] != '"' {
			return "", 0, false, false
		}
		end := bytes.IndexByte(b[i+1:], '"')
		if end < 0 {
			return "", 0, false, false
		}
		key := b[i+1 : i+1+end]
		i = skipWS(b, i+2+end)
		if i >= len(b) || b[i] != ':' {
			return "", 0, false, false
		}
		i = skipWS(b, i+1)
		switch string(key) {
		case "token":
			if haveToken || i >= len(b) || b[i] != '"' {
				return "", 0, false, false
			}
			j := i + 1
			for j < len(b) && b[j] != '"' {
				if c := b[j]; c < 0x20 || c > 0x7e || c == '\\' {
					return "", 0, false, false
				}
				j++
			}
			if j >= len(b) {
				return "", 0, false, false
			}
			token, haveToken = string(b[i+1:j]), true
			i = j + 1
		case "lease_id":
			if hasLease {
				return "", 0, false, false
			}
			j := i
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			if j == i || b[i] == '0' || j-i > 19 {
				return "", 0, false, false
			}
			if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
				return "", 0, false, false
			}
			n, err := strconv.ParseInt(string(b[i:j]), 10, 64)
			if err != nil {
				return "", 0, false, false
			}
			lease, hasLease = n, true
			i = j
		default:
			return "", 0, false, false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return "", 0, false, false
		}
		if b[i] == '}' {
			if skipWS(b, i+1) != len(b) || !haveToken {
				return "", 0, false, false
			}
			return token, lease, hasLease, true
		}
		if b[i] != ',' {
			return "", 0, false, false
		}
		i = skipWS(b, i+1)
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
