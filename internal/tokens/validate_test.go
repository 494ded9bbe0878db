package tokens_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokenlease/tokenlease/internal/tokens"
)

func TestValidateValue(t *testing.T) {
	t.Parallel()
	valid := []string{
		"a",
		"key-1",
		"a/b?c d",
		"k+ey/base64==",
		"ключ доступа",
		" ",
		"...",
		strings.Repeat("x", 512),
		strings.Repeat("é", 256), // 512 bytes
		"Stats",                  // route words are case-sensitive
		"stats/",
	}
	for _, v := range valid {
		if err := tokens.ValidateValue(v); err != nil {
			t.Errorf("ValidateValue(%q): %v", v, err)
		}
	}
	invalid := map[string]string{
		"empty":                   "",
		"513 bytes":               strings.Repeat("x", 513),
		"257 two-byte characters": strings.Repeat("é", 257),
		"100 KB":                  strings.Repeat("x", 100<<10),
		"invalid UTF-8":           "key-\xff",
		"NUL":                     "a\x00b",
		"newline":                 "a\nb",
		"tab":                     "a\tb",
		"DEL":                     "a\x7fb",
		"C1 control":              "a\u0085b",
		"route word stats":        "stats",
		"route word events":       "events",
		"route word assign":       "assign",
		"route word generate":     "generate",
		"route word import":       "import",
		"route word unblock":      "unblock",
		"route word delete":       "delete",
		"route word keep-alive":   "keep-alive",
		"dot segment":             ".",
		"dot-dot segment":         "..",
	}
	for name, v := range invalid {
		err := tokens.ValidateValue(v)
		if err == nil {
			t.Errorf("%s: ValidateValue accepted %q", name, v)
		} else if !errors.Is(err, tokens.ErrInvalidRequest) {
			t.Errorf("%s: error %v is not ErrInvalidRequest", name, err)
		}
	}
}

func TestValidateHolder(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"worker-17@host-a", strings.Repeat("h", 200), strings.Repeat("ж", 200)} {
		if err := tokens.ValidateHolder(h); err != nil {
			t.Errorf("ValidateHolder(%q): %v", h, err)
		}
	}
	for _, h := range []string{"", strings.Repeat("h", 201), strings.Repeat("ж", 201), "a\nb", "w-\xff"} {
		if err := tokens.ValidateHolder(h); !errors.Is(err, tokens.ErrInvalidRequest) {
			t.Errorf("ValidateHolder(%q) = %v, want ErrInvalidRequest", h, err)
		}
	}
}

func TestValidateLeaseID(t *testing.T) {
	t.Parallel()
	if err := tokens.ValidateLeaseID(1); err != nil {
		t.Fatalf("lease id 1: %v", err)
	}
	for _, id := range []int64{0, -1} {
		if err := tokens.ValidateLeaseID(id); !errors.Is(err, tokens.ErrInvalidRequest) {
			t.Errorf("ValidateLeaseID(%d) = %v", id, err)
		}
	}
}
