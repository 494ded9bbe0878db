package httpapi

import "testing"

func TestLoneSurrogate(t *testing.T) {
	for _, tc := range []struct {
		body string
		at   int
	}{
		{`{"a":"plain"}`, -1},
		{`{"a":"\u00e9\u0041"}`, -1},
		{`{"a":"\ud83d\ude00"}`, -1}, // a valid pair: 😀
		{`{"a":"\uD83D\uDE00\uD83D\uDE00"}`, -1},
		{`{"a":"\\ud800"}`, -1}, // an escaped backslash, then text
		{`{"a":"\\\ud800"}`, 8}, // an escaped backslash, then a lone surrogate
		{`{"a":"\"\ud800"}`, 8}, // after an escaped quote
		{`{"a":"\ud800"}`, 6},   // lone high
		{`{"a":"\udc00"}`, 6},   // lone low
		{`{"a":"\ud800x"}`, 6},  // high, then no escape
		{`{"a":"\ud800\u0041"}`, 6},
		{`{"a":"\ud800\ud800"}`, 6},
		{`{"a":"\ude00\ud83d"}`, 6}, // a pair in the wrong order
		{`{"a":"\ud800`, 6},         // cut short
		{`{"a":"\u12"}`, -1},        // malformed: left to the decoder
	} {
		if got := loneSurrogate([]byte(tc.body)); got != tc.at {
			t.Errorf("loneSurrogate(%s) = %d, want %d", tc.body, got, tc.at)
		}
	}
}
