package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewSecretShape(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s := NewSecret()
		if len(s) != 46 || !strings.HasPrefix(s, "tl_") || !LooksLikeKey(s) {
			t.Fatalf("secret %d chars, prefix %q: not a key", len(s), s[:3])
		}
		if seen[s] {
			t.Fatal("two secrets alike")
		}
		seen[s] = true
	}
}

func TestLooksLikeKeyRefuses(t *testing.T) {
	good := NewSecret()
	for name, s := range map[string]string{
		"empty":        "",
		"no prefix":    "xx_" + good[3:],
		"short":        good[:45],
		"long":         good + "A",
		"bad alphabet": good[:10] + "+" + good[11:],
		"padding":      good[:45] + "=",
	} {
		if LooksLikeKey(s) {
			t.Errorf("%s: accepted", name)
		}
		if err := ValidateSecret(s); !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), s) && s != "" {
			t.Errorf("%s: ValidateSecret = %v", name, err)
		}
	}
}

func TestLimiterBurstThenRetryAfter(t *testing.T) {
	l := NewLimiter(LimiterConfig{Default: 5})
	for i := range 10 { // burst = 2 x 5
		if err := l.Allow("a", 0); err != nil {
			t.Fatalf("request %d within the burst refused: %v", i, err)
		}
	}
	err := l.Allow("a", 0)
	var rl *RateLimitedError
	if !errors.As(err, &rl) || !errors.Is(err, ErrRateLimited) || rl.RetryAfter <= 0 || rl.RetryAfter > time.Second {
		t.Fatalf("past the burst: %v", err)
	}
	if err := l.Allow("b", 0); err != nil {
		t.Fatalf("another caller is limited: %v", err)
	}
	if err := l.Allow("c", 1000); err != nil {
		t.Fatalf("own rate: %v", err)
	}
	if err := NewLimiter(LimiterConfig{}).Allow("a", 0); err != nil {
		t.Fatalf("no limit configured: %v", err)
	}
}

func TestLimiterIsBounded(t *testing.T) {
	l := NewLimiter(LimiterConfig{Default: 1, MaxCallers: 50})
	for i := range 1000 {
		_ = l.Allow(strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String(), 0)
	}
	if n := l.Len(); n > 50 {
		t.Fatalf("%d buckets kept, cap 50", n)
	}
}
