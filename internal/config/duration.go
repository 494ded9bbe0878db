package config

// Durations are read as the contract writes them (DESIGN.md section 3): Go
// syntax or a bare number of seconds. The environment variables and the
// API's ttl and wait share this reading.

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration reads a duration as the API and the configuration accept it:
// Go syntax ("90s", "250ms", "2m") or a bare number of seconds ("60", "1.5").
func ParseDuration(s string) (time.Duration, error) {
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

// DurationFromSeconds converts a JSON number of seconds.
func DurationFromSeconds(secs float64) (time.Duration, error) {
	return secondsToDuration(secs, strconv.FormatFloat(secs, 'g', -1, 64))
}
