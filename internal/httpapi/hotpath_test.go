package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/tokens"
)

// The hot path's hand-written JSON must be byte for byte what writeJSON
// writes, and its parser must accept only bodies the strict decoder reads the
// same way.

func recordResponse(f func(c *gin.Context)) (string, http.Header, int) {
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	c.Request = httptest.NewRequest(http.MethodPost, "/", nil)
	f(c)
	return w.Body.String(), w.Header(), w.Code
}

var oddStrings = []string{
	"plainToken_-09AZaz", "with space", `quote"inside`, `back\slash`, "html <&>", "tab\tnew\nline",
	"ctrl\x01\x1f", "é unicode ✓", "line\u2028sep\u2029", "emoji 🎉", "slash/and?query", "~!@#$%^*()",
}

func TestWriteAssignedMatchesWriteJSON(t *testing.T) {
	t.Parallel()
	loc := time.FixedZone("X", 5*3600+1800)
	for _, tok := range oddStrings {
		for _, holder := range append([]string{""}, oddStrings...) {
			l := tokens.Lease{
				Token: tok, LeaseID: 1234567890123,
				LeaseExpiresAt: time.Date(2026, 11, 25, 2, 3, 4, 123456789, loc),
				AliveUntil:     time.Date(2026, 11, 25, 2, 8, 4, 0, time.UTC),
				Holder:         holder,
			}
			want, wantH, wantCode := recordResponse(func(c *gin.Context) {
				writeJSON(c, http.StatusOK, assignResponse{
					Token: l.Token, LeaseID: l.LeaseID, LeaseExpiresAt: apiTime(l.LeaseExpiresAt),
					AliveUntil: apiTime(l.AliveUntil), Holder: optString(l.Holder),
				})
			})
			got, gotH, gotCode := recordResponse(func(c *gin.Context) { writeAssigned(c, l) })
			if got != want || gotCode != wantCode || gotH.Get("Content-Type") != wantH.Get("Content-Type") {
				t.Errorf("token %q holder %q:\n got %d %q %q\nwant %d %q %q", tok, holder,
					gotCode, gotH.Get("Content-Type"), got, wantCode, wantH.Get("Content-Type"), want)
			}
		}
	}
}

func TestWriteUnblockedMatchesWriteJSON(t *testing.T) {
	t.Parallel()
	for _, tok := range oddStrings {
		want, _, _ := recordResponse(func(c *gin.Context) {
			writeJSON(c, http.StatusOK, unblockResponse{Token: tok, State: "free"})
		})
		got, _, _ := recordResponse(func(c *gin.Context) { writeUnblocked(c, tok) })
		if got != want {
			t.Errorf("token %q:\n got %q\nwant %q", tok, got, want)
		}
	}
}

var refBodies = []string{
	`{"token":"abc","lease_id":42}`,
	`{"lease_id":42,"token":"abc"}`,
	` { "token" : "a b~c" , "lease_id" : 9223372036854775807 } `,
	"{\n\t\"token\": \"x\"\r\n}",
	`{"token":"abc"}`,
	`{"token":""}`,
	`{"token":"abc","lease_id":1234567890123456789}`,
	`{"token":"abc","lease_id":123456789012345678}`,
	// Below: the fast parser declines; the strict decoder decides.
	`{"token":"abc","lease_id":9223372036854775808}`,
	`{"token":"abc","lease_id":12345678901234567890}`,
	`{"token":"abc","lease_id":0}`,
	`{"token":"abc","lease_id":-1}`,
	`{"token":"abc","lease_id":1.0}`,
	`{"token":"abc","lease_id":1e3}`,
	`{"token":"abc","lease_id":"5"}`,
	`{"token":"abc","lease_id":null}`,
	`{"token":"a\"b"}`,
	`{"token":"a\u0041"}`,
	`{"token":"é"}`,
	`{"token":null}`,
	`{"token":5}`,
	`{"token":"abc","token":"def"}`,
	`{"token":"abc","extra":1}`,
	`{"Token":"abc"}`,
	`{"lease_id":5}`,
	`{}`,
	`{"token":"abc"} {}`,
	`{"token":"abc"}x`,
	`{"token":"abc",}`,
	`{"token":"abc"`,
	`{"token":"abc`,
	`[]`,
	`null`,
	``,
	`   `,
	"{\"token\":\"a\x01b\"}",
	"{\"token\":\"\xff\"}",
}

func TestParseRefFastAgreesWithDecoder(t *testing.T) {
	t.Parallel()
	fast := 0
	for _, body := range refBodies {
		if checkRefBody(t, []byte(body)) {
			fast++
		}
	}
	if fast != 8 {
		t.Errorf("the fast parser took %d of the bodies, want the first 8", fast)
	}
}

// checkRefBody reports whether the fast parser took body, and fails the test
// if it read it otherwise than the strict decoder.
func checkRefBody(t *testing.T, body []byte) bool {
	t.Helper()
	tok, lease, hasLease, ok := parseRefFast(body)
	if !ok {
		return false
	}
	ref, err := decodeRefFrom(body, true)
	switch {
	case err != nil:
		t.Errorf("%q: fast parser took it, strict decoder refused: %v", body, err)
	case *ref.Token != tok:
		t.Errorf("%q: token %q, strict decoder %q", body, tok, *ref.Token)
	case hasLease != (ref.LeaseID != nil) || (hasLease && *ref.LeaseID != lease):
		t.Errorf("%q: lease %v %d, strict decoder %v", body, hasLease, lease, ref.LeaseID)
	}
	return true
}

func FuzzParseRefFast(f *testing.F) {
	for _, b := range refBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkRefBody(t, body) })
}

// Benchmarks of the hot path against the general path it replaces:
// go test -run '^$' -bench HotPath -benchmem ./internal/httpapi/

func BenchmarkHotPathAssignResponse(b *testing.B) {
	l := tokens.Lease{
		Token: "pXKRMSnClfYl9QkbXNisRQ", LeaseID: 123456789,
		LeaseExpiresAt: time.Now(), AliveUntil: time.Now().Add(time.Hour),
	}
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	c.Request = httptest.NewRequest(http.MethodPost, "/", nil)
	b.Run("writeJSON", func(b *testing.B) {
		for b.Loop() {
			w.Body.Reset()
			writeJSON(c, http.StatusOK, assignResponse{
				Token: l.Token, LeaseID: l.LeaseID, LeaseExpiresAt: apiTime(l.LeaseExpiresAt),
				AliveUntil: apiTime(l.AliveUntil), Holder: optString(l.Holder),
			})
		}
	})
	b.Run("writeAssigned", func(b *testing.B) {
		for b.Loop() {
			w.Body.Reset()
			writeAssigned(c, l)
		}
	})
}

func BenchmarkHotPathUnblockBody(b *testing.B) {
	body := []byte(`{"token":"pXKRMSnClfYl9QkbXNisRQ","lease_id":123456789}`)
	b.Run("decodeRefFrom", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeRefFrom(body, true); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parseRefFast", func(b *testing.B) {
		for b.Loop() {
			if _, _, _, ok := parseRefFast(body); !ok {
				b.Fatal("not taken")
			}
		}
	})
}

// optString is the holder as the general path's response struct holds it.
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
