package events_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

// sseEvent is one event as a client parses it off the wire.
type sseEvent struct {
	ID    string
	Event string
	Data  string
	At    time.Time // when the client read it
}

// payload decodes the event's data.
func (e sseEvent) payload(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(e.Data), &m); err != nil {
		t.Fatalf("event data %q: %v", e.Data, err)
	}
	return m
}

// leaseID returns data.lease_id, or 0 when absent.
func (e sseEvent) leaseID(t testing.TB) int64 {
	v, ok := e.payload(t)["lease_id"].(float64)
	if !ok {
		return 0
	}
	return int64(v)
}

// stream is an open SSE connection read in the background.
type stream struct {
	resp     *http.Response
	events   chan sseEvent
	opened   chan struct{}
	ended    chan struct{}
	cancel   context.CancelFunc
	mu       sync.Mutex
	comments []string
}

// openStream opens GET path on pod and waits until the server has
// subscribed (its opening comment arrived). lastEventID is sent as the
// Last-Event-ID header when not empty.
func openStream(t testing.TB, pod *apptest.Pod, path, lastEventID string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pod.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	req.Header.Set("Authorization", "Bearer "+pod.AdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &stream{resp: resp, events: make(chan sseEvent, 100000), opened: make(chan struct{}), ended: make(chan struct{}), cancel: cancel}
	go s.read()
	t.Cleanup(s.close)
	select {
	case <-s.opened:
	case <-time.After(20 * time.Second):
		t.Fatalf("stream %s did not open", path)
	}
	return s
}

func (s *stream) read() {
	defer close(s.ended)
	defer close(s.events)
	sc := bufio.NewScanner(s.resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var cur sseEvent
	opened := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Data != "" || cur.Event != "" {
				cur.At = time.Now()
				s.events <- cur
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ":"):
			s.mu.Lock()
			s.comments = append(s.comments, strings.TrimSpace(line[1:]))
			s.mu.Unlock()
			if !opened {
				opened = true
				close(s.opened)
			}
		case strings.HasPrefix(line, "id: "):
			cur.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.Event = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.Data = line[6:]
		}
	}
}

func (s *stream) close() {
	s.cancel()
	s.resp.Body.Close()
	<-s.ended
}

// next returns the next event, failing after within.
func (s *stream) next(t testing.TB, within time.Duration) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(within):
		t.Fatalf("no event within %s", within)
		return sseEvent{}
	}
}

// collect returns events until one satisfies stop (included).
func (s *stream) collect(t testing.TB, within time.Duration, stop func(sseEvent) bool) []sseEvent {
	t.Helper()
	deadline := time.After(within)
	var got []sseEvent
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("the stream ended after %d events", len(got))
			}
			got = append(got, ev)
			if stop(ev) {
				return got
			}
		case <-deadline:
			t.Fatalf("timed out after %d events", len(got))
		}
	}
}

// percentile returns the p-th percentile (0..100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func decodeBody(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}
