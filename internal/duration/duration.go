// Package duration reads durations as the contract writes them (DESIGN.md
// section 3): Go syntax or a bare number of seconds. It is a leaf: the
// configuration (environment variables) and the API (ttl, wait) both use it,
// and it imports nothing of the service.
package duration

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Parse reads a duration as the API and the configuration accept it:
// Go syntax ("90s", "250ms", "2m") or a bare number of seconds ("60", "1.5").
func Parse(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		return secondsToDuration(secs, s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use Go syntax such as 90s, 250ms, 2m, or a number of seconds", s)
	}
	return d, nil
}

func secondsToDuration(secs float64, orig string) (time.Duration, error) {
	if secs != secs || secs > float64(1<<62)/float64(time.Second) || secs < -float64(1<<62)/float64(time.Second) {
		return 0, fmt.Errorf("invalid duration %q: out of range", orig)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// FromSeconds converts a JSON number of seconds.
func FromSeconds(secs float64) (time.Duration, error) {
	return secondsToDuration(secs, strconv.FormatFloat(secs, 'g', -1, 64))
}
