package events

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// gatedWriter is a ResponseWriter whose writes can be held, like a client
// that stops reading.
type gatedWriter struct {
	header  http.Header
	mu      sync.Mutex
	buf     bytes.Buffer
	status  int
	gate    chan struct{} // when non-nil, writes wait for it to close
	entered chan struct{} // receives once per held write
}

func newGatedWriter() *gatedWriter {
	return &gatedWriter{header: http.Header{}, entered: make(chan struct{}, 16)}
}

func (w *gatedWriter) Header() http.Header { return w.header }
func (w *gatedWriter) WriteHeader(code int) {
	w.mu.Lock()
	w.status = code
	w.mu.Unlock()
}
func (w *gatedWriter) Flush() {}
func (w *gatedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	gate := w.gate
	w.mu.Unlock()
	if gate != nil {
		w.entered <- struct{}{}
		<-gate
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}
func (w *gatedWriter) hold() chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gate = make(chan struct{})
	return w.gate
}
func (w *gatedWriter) output() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func testStreamer(h *Hub, heartbeat time.Duration) *streamer {
	return &streamer{hub: h, done: make(chan struct{}), batch: 100, heartbeat: heartbeat,
		writeTimeout: time.Second, logger: slog.Default()}
}

// serveTest runs the handler on w with a request for target; the returned
// channel closes when the handler returns.
func serveTest(s *streamer, w http.ResponseWriter, target string, ctx context.Context) <-chan struct{} {
	c, _ := gin.CreateTestContext(w)
	c.Request = httptest.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serve(c)
	}()
	return done
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// A client that stops reading is dropped once its buffer is full: it gets
// what was buffered, then a final "dropped" event naming the last id it got,
// and the stream ends. The publisher never waits.
func TestStreamDropsSlowClient(t *testing.T) {
	t.Parallel()
	h := newHub(4)
	h.start(Position{Xid: 100})
	w := newGatedWriter()
	handlerDone := serveTest(testStreamer(h, time.Hour), w, "/tokens/events", context.Background())
	eventually(t, 10*time.Second, "the stream to open", func() bool { return strings.Contains(w.output(), ": ok") })

	release := w.hold()
	h.publish([]Event{testEvent(100, 1, KindAssigned)})
	waitFor(t, w.entered, "the handler to write the first event") // now stuck in Write
	for id := int64(2); id <= 6; id++ {                           // 4 fill the buffer, the 5th drops the stream
		h.publish([]Event{testEvent(100, id, KindAssigned)})
	}
	close(release)
	waitFor(t, handlerDone, "the dropped stream to end")

	out := w.output()
	for id := 1; id <= 5; id++ {
		if !strings.Contains(out, "id: 100-"+string(rune('0'+id))+"\n") {
			t.Errorf("event 100-%d missing from\n%s", id, out)
		}
	}
	if strings.Contains(out, "id: 100-6\n") {
		t.Error("the event that overflowed the buffer must not be sent")
	}
	if !strings.HasSuffix(out, "event: dropped\ndata: {\"last_event_id\":\"100-5\",\"message\":\"the stream fell too far behind and was dropped; reconnect with Last-Event-ID to resume\",\"reason\":\"slow_consumer\"}\n\n") {
		t.Fatalf("the stream does not end with the dropped event:\n%s", out)
	}
}

func TestStreamHeartbeatAndEnd(t *testing.T) {
	t.Parallel()
	h := newHub(4)
	h.start(Position{})
	w := newGatedWriter()
	ctx, cancel := context.WithCancel(context.Background())
	handlerDone := serveTest(testStreamer(h, 10*time.Millisecond), w, "/tokens/events", ctx)
	eventually(t, 10*time.Second, "a heartbeat", func() bool { return strings.Contains(w.output(), ": ping\n\n") })
	if ct := w.Header().Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	cancel() // the client goes away
	waitFor(t, handlerDone, "the handler to return after the client left")
	if h.subscribers() != 0 {
		t.Fatal("the subscription outlived its stream")
	}

	// Shutdown ends open streams.
	w2 := newGatedWriter()
	done2 := serveTest(testStreamer(h, time.Hour), w2, "/tokens/events", context.Background())
	eventually(t, 10*time.Second, "the stream to open", func() bool { return h.subscribers() == 1 })
	h.close()
	waitFor(t, done2, "the stream to end at shutdown")
}

func TestStreamRefusesBadRequests(t *testing.T) {
	t.Parallel()
	h := newHub(4)
	h.start(Position{})
	for _, target := range []string{
		"/tokens/events?kind=assigned,nonsense",
		"/tokens/events?last_event_id=12",
		"/tokens/events?last_event_id=-1-2",
	} {
		rec := httptest.NewRecorder()
		waitFor(t, serveTest(testStreamer(h, time.Hour), rec, target, context.Background()), "the handler")
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"code":"invalid_request"`) {
			t.Errorf("%s: %d %s", target, rec.Code, rec.Body)
		}
	}
}
