package config_test

import (
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/config"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"90s", 90 * time.Second},
		{"250ms", 250 * time.Millisecond},
		{"2m", 2 * time.Minute},
		{"1h30m", 90 * time.Minute},
		{"60", 60 * time.Second},
		{"1.5", 1500 * time.Millisecond},
		{"0.1", 100 * time.Millisecond},
		{"0", 0},
		{"-2", -2 * time.Second}, // parses; ranges are checked where used
		{" 5s ", 5 * time.Second},
	} {
		got, err := config.ParseDuration(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "  ", "soon", "5 s", "5x", "s", "NaN", "Inf", "-Inf", "1e30", "9223372037", "1,5"} {
		if got, err := config.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %s, want an error", in, got)
		}
	}
}

func TestFromSeconds(t *testing.T) {
	t.Parallel()
	if got, err := config.DurationFromSeconds(2.5); err != nil || got != 2500*time.Millisecond {
		t.Fatalf("DurationFromSeconds(2.5) = %s, %v", got, err)
	}
	for _, secs := range []float64{1e300, -1e300} {
		if _, err := config.DurationFromSeconds(secs); err == nil {
			t.Errorf("DurationFromSeconds(%g) accepted", secs)
		}
	}
}
