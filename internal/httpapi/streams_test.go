package httpapi_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/config"
)

// rawStream opens GET /tokens/events on a bare TCP connection (so that the
// client side costs next to nothing in this process) and reads the answer's
// status line and, for a 200, the stream's opening comment. It returns the
// status and the open connection (nil unless 200).
func rawStream(t testing.TB, pod *apptest.Pod) (int, net.Conn) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(pod.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /tokens/events HTTP/1.1\r\nHost: pod\r\nAuthorization: Bearer %s\r\n\r\n", pod.AdminKey)
	conn.SetReadDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck // a read then fails
	r := bufio.NewReaderSize(conn, 512)
	status, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	var code int
	if _, err := fmt.Sscanf(status, "HTTP/1.1 %d", &code); err != nil {
		t.Fatalf("status line %q", status)
	}
	if code != http.StatusOK {
		conn.Close()
		return code, nil
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		if strings.HasPrefix(line, ": ok") {
			return code, conn
		}
	}
}

// heap returns the live heap and the goroutine stacks after a collection.
func heap() (live, stacks uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.StackInuse
}

// An idle event stream costs a pod a few KB: 1,000 of them, opened and
// subscribed, grow the heap by far less than one preallocated buffer of
// 4096 events each would. Not parallel: it measures the whole process.
func TestIdleStreamsCostFewKB(t *testing.T) {
	const n = 1000
	pod := apptest.NewPod(t)
	beforeHeap, beforeStacks := heap()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		status, c := rawStream(t, pod)
		if status != http.StatusOK {
			t.Fatalf("stream %d: status %d", len(conns)+1, status)
		}
		conns = append(conns, c)
	}
	if got := pod.App.Events.Stats().Subscribers; got != n {
		t.Fatalf("%d subscribers, want %d", got, n)
	}
	afterHeap, afterStacks := heap()
	perHeap := (float64(afterHeap) - float64(beforeHeap)) / n
	perStack := (float64(afterStacks) - float64(beforeStacks)) / n
	t.Logf("per idle stream (server and bare client in one process): heap %.1f KB, goroutine stacks %.1f KB", perHeap/1024, perStack/1024)
	if perHeap > 30<<10 {
		t.Errorf("an idle stream grows the heap by %.1f KB, want < 30 KB", perHeap/1024)
	}
}

// Past MAX_STREAMS a stream is refused with 503 unavailable and Retry-After;
// once a stream ends, a new one is served again.
func TestMaxStreams(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithConfig(func(c *config.Config) { c.MaxStreams = 3 }))
	var conns []net.Conn
	for range 3 {
		status, c := rawStream(t, pod)
		if status != http.StatusOK {
			t.Fatalf("stream %d of 3: status %d", len(conns)+1, status)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	r := pod.Call(t, "GET", "/tokens/events", nil)
	wantStatus(t, r, http.StatusServiceUnavailable)
	if code := r.ErrorCode(t); code != "unavailable" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("past MAX_STREAMS: code %q, Retry-After %q", code, r.Header.Get("Retry-After"))
	}
	conns[0].Close()
	conns = conns[1:]
	apptest.Eventually(t, 20*time.Second, "a stream to be served again after one ended", func() bool {
		status, c := rawStream(t, pod)
		if c != nil {
			conns = append(conns, c)
		}
		return status == http.StatusOK
	})
}
