package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/logging"
)

// getWithID sends GET path with X-Request-ID id (none when empty).
func getWithID(t *testing.T, pod *apptest.Pod, path, id string) apptest.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, pod.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id != "" {
		req.Header.Set("X-Request-ID", id)
	}
	resp, err := pod.Client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

func errorRequestID(t *testing.T, r apptest.Response) string {
	t.Helper()
	var e struct {
		Error struct {
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	r.JSON(t, &e)
	return e.Error.RequestID
}

func TestEveryAnswerNamesItsRequest(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t)
	long := strings.Repeat("x", 129)
	seen := map[string]bool{}
	for _, c := range []struct {
		sent string
		kept bool
	}{
		{"", false},
		{"", false},
		{"client-req-42", true},
		{"Root=1-5f1b2c3d-abc;Parent=xyz", true},
		{strings.Repeat("y", 128), true},
		{long, false},
		{"two words", false},
		{"tab\there", false},
		{"ünïcode", false},
	} {
		r := getWithID(t, pod, "/healthz", c.sent)
		got := r.Header.Get("X-Request-ID")
		switch {
		case c.kept && got != c.sent:
			t.Errorf("X-Request-ID %q came back as %q", c.sent, got)
		case !c.kept && (got == "" || got == c.sent || len(got) > 128):
			t.Errorf("X-Request-ID %q: the answer's id is %q, want a new one", c.sent, got)
		case seen[got]:
			t.Errorf("request id %q given twice", got)
		}
		seen[got] = true
	}

	r := getWithID(t, pod, "/tokens/no-such-token", "lookup-1")
	wantError(t, r, http.StatusNotFound, "not_found")
	if id := errorRequestID(t, r); id != "lookup-1" {
		t.Errorf("error body's request_id %q, want lookup-1", id)
	}
	r = pod.DoAs(t, apptest.Anonymous, "GET", "/tokens/stats", nil)
	if id := errorRequestID(t, r); id == "" || id != r.Header.Get("X-Request-ID") {
		t.Errorf("401: request_id %q, header %q", id, r.Header.Get("X-Request-ID"))
	}
}

// requestLines returns the JSON log lines of buf with msg "request".
func requestLines(t *testing.T, buf *apptest.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		if m["msg"] == "request" {
			out = append(out, m)
		}
	}
	return out
}

func captureLogs(t *testing.T, level slog.Level) *apptest.Buffer {
	buf := &apptest.Buffer{}
	prev := slog.Default()
	slog.SetDefault(logging.New(buf, logging.FormatJSON, level))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return buf
}

// Access logs at info: one request in 100, every slow one (each line with
// its request id); at debug: every request. The line names the route, never
// the path (which may hold a token). Not parallel: it owns the default
// logger and counts the sample.
func TestAccessLogs(t *testing.T) {
	pod := apptest.NewPod(t)
	pod.Generate(t, 1)
	pod.Assign(t, map[string]any{"ttl": "1h"})

	logs := captureLogs(t, slog.LevelInfo)
	for range 200 {
		getWithID(t, pod, "/healthz", "")
	}
	if n := len(requestLines(t, logs)); n != 2 {
		t.Errorf("200 quick requests logged %d times at info, want 2 (one in 100)", n)
	}
	r, err := pod.SendRaw("POST", "/tokens/assign?wait=1100ms", nil) // none free: waits, then 404
	if err != nil || r.Status != http.StatusNotFound {
		t.Fatalf("assign?wait=1100ms: %v %d", err, r.Status)
	}
	found := false
	for _, l := range requestLines(t, logs) {
		if l["route"] == "/tokens/assign" {
			found = true
			if l["request_id"] != r.Header.Get("X-Request-ID") || l["status"] != float64(404) || l["level"] != "INFO" {
				t.Errorf("slow request's line: %v, want request_id %s", l, r.Header.Get("X-Request-ID"))
			}
		}
	}
	if !found {
		t.Error("a request slower than 1s was not logged at info")
	}

	logs = captureLogs(t, slog.LevelDebug)
	getWithID(t, pod, "/tokens/secret-token-value", "debug-1")
	getWithID(t, pod, "/healthz", "debug-2")
	lines := requestLines(t, logs)
	if len(lines) != 2 || lines[0]["request_id"] != "debug-1" || lines[1]["request_id"] != "debug-2" ||
		lines[0]["route"] != "/tokens/:token" || lines[0]["method"] != "GET" {
		t.Errorf("debug access log: %v", lines)
	}
	for _, l := range lines {
		if b, _ := json.Marshal(l); bytes.Contains(b, []byte("secret-token-value")) {
			t.Errorf("the access log holds the path: %s", b)
		}
	}
}
