package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/events"
	"github.com/tokenlease/tokenlease/internal/httpapi"
	"github.com/tokenlease/tokenlease/internal/tokens"
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

// hubSource feeds the stream from an in-memory hub, without a change log
// behind it.
type hubSource struct{ *events.Hub }

func (hubSource) ReadUpTo(context.Context, events.Position, events.Position, int) (events.Chunk, error) {
	return events.Chunk{}, errors.New("no change log in this test")
}

func testEvent(xid, id int64, kind string) events.Event {
	return events.NewEvent(events.Event{Pos: events.Position{Xid: xid, ID: id}, Pool: tokens.DefaultPool, Kind: kind, Token: "t", At: time.Unix(0, 0)})
}

// testStream is the API with only its event stream, fed by h.
func testStream(h *events.Hub, heartbeat time.Duration) http.Handler {
	return httpapi.NewHandler(nil, httpapi.Options{
		Events: hubSource{h},
		Stream: httpapi.StreamOptions{Batch: 100, Heartbeat: heartbeat, WriteTimeout: time.Second},
	})
}

// serveTest runs the handler on w with a request for target; the returned
// channel closes when the handler returns.
func serveTest(h http.Handler, w http.ResponseWriter, target string, ctx context.Context) <-chan struct{} {
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(w, req)
	}()
	return done
}

func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
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
	h := events.NewHub(4)
	h.Start(events.Position{Xid: 100})
	w := newGatedWriter()
	handlerDone := serveTest(testStream(h, time.Hour), w, "/tokens/events", context.Background())
	apptest.Eventually(t, 10*time.Second, "the stream to open", func() bool { return strings.Contains(w.output(), ": ok") })

	release := w.hold()
	h.Publish([]events.Event{testEvent(100, 1, events.KindAssigned)})
	waitSignal(t, w.entered, "the handler to write the first event") // now stuck in Write
	for id := int64(2); id <= 6; id++ {                              // 4 fill the buffer, the 5th drops the stream
		h.Publish([]events.Event{testEvent(100, id, events.KindAssigned)})
	}
	close(release)
	waitSignal(t, handlerDone, "the dropped stream to end")

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
	h := events.NewHub(4)
	h.Start(events.Position{})
	w := newGatedWriter()
	ctx, cancel := context.WithCancel(context.Background())
	handlerDone := serveTest(testStream(h, 10*time.Millisecond), w, "/tokens/events", ctx)
	apptest.Eventually(t, 10*time.Second, "a heartbeat", func() bool { return strings.Contains(w.output(), ": ping\n\n") })
	if ct := w.Header().Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	cancel() // the client goes away
	waitSignal(t, handlerDone, "the handler to return after the client left")
	if h.Subscribers() != 0 {
		t.Fatal("the subscription outlived its stream")
	}

	// Shutdown ends open streams.
	w2 := newGatedWriter()
	done2 := serveTest(testStream(h, time.Hour), w2, "/tokens/events", context.Background())
	apptest.Eventually(t, 10*time.Second, "the stream to open", func() bool { return h.Subscribers() == 1 })
	h.Close()
	waitSignal(t, done2, "the stream to end at shutdown")
}

func TestStreamRefusesBadRequests(t *testing.T) {
	t.Parallel()
	h := events.NewHub(4)
	h.Start(events.Position{})
	for _, target := range []string{
		"/tokens/events?kind=assigned,nonsense",
		"/tokens/events?last_event_id=12",
		"/tokens/events?last_event_id=-1-2",
	} {
		rec := httptest.NewRecorder()
		waitSignal(t, serveTest(testStream(h, time.Hour), rec, target, context.Background()), "the handler")
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"code":"invalid_request"`) {
			t.Errorf("%s: %d %s", target, rec.Code, rec.Body)
		}
	}
}
