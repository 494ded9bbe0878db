package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/config"
	"github.com/tokenlease/tokenlease/internal/events"
	"github.com/tokenlease/tokenlease/internal/testdb"
)

// readStream reads an event stream as credential until it holds every
// marker in until, or 10 s passed, and returns the raw bytes and status.
func readStream(t testing.TB, pod *apptest.Pod, credential, path, lastEventID string, act func(), until ...string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", pod.URL+path, nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := pod.Client.Do(apptest.WithCredential(req, credential))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	var got bytes.Buffer
	buf := make([]byte, 4096)
	// The opening comment says the stream is subscribed.
	for !bytes.Contains(got.Bytes(), []byte(": ok\n")) {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("stream ended before opening: %v", err)
		}
	}
	if act != nil {
		act()
	}
	for {
		done := true
		for _, u := range until {
			done = done && bytes.Contains(got.Bytes(), []byte(u))
		}
		if done {
			return 200, got.Bytes()
		}
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("stream ended (%v) before it held %q; got %s", err, until, got.Bytes())
		}
	}
}

// A reader never receives a token's value: not in lookups, not in the
// live stream, not in a resume; it gets token_fp. A deep resume is refused.
func TestReaderNeverSeesTokenValues(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t)
	reader := pod.CreateKey(t, "reader-1", "reader", nil, nil)
	operator := pod.CreateKey(t, "operator-1", "operator", nil, nil)
	// An old change in the log (written an hour ago), before anything else.
	if _, err := pod.App.Pool.Exec(context.Background(),
		`INSERT INTO token_events (pool_id, kind, token_id, token, pod, at) VALUES (1, 'generated', 0, 'ancient-secret-value', 'test', now() - interval '1 hour')`); err != nil {
		t.Fatal(err)
	}
	values := []string{"licence-A-0001", "proxy 10.0.0.7:3128/eu"}
	var generated []string
	status, raw := readStream(t, pod, reader.Secret, "/tokens/events", "", func() {
		pod.Import(t, values...)
		generated = pod.Generate(t, 2)
	}, events.Fingerprint(values[0]), events.Fingerprint(values[1]))
	if status != 200 {
		t.Fatalf("reader stream: %d %s", status, raw)
	}
	all := append(append([]string{"ancient-secret-value"}, values...), generated...)
	wantNone(t, "reader's live stream", raw, all)
	if !bytes.Contains(raw, []byte(`"token_fp":"`+events.Fingerprint(values[0])+`"`)) {
		t.Fatalf("reader's stream lacks token_fp: %s", raw)
	}

	// Lookups.
	r := pod.CallAs(t, reader.Secret, "GET", apptest.TokenPath(values[1]), nil)
	wantStatus(t, r, 200)
	wantNone(t, "reader's lookup", r.Body, all)
	if m := r.Map(t); m["token_fp"] != events.Fingerprint(values[1]) || m["state"] != "free" {
		t.Fatalf("reader's lookup: %s", r.Body)
	}
	r = pod.CallAs(t, operator.Secret, "GET", apptest.TokenPath(values[1]), nil)
	if m := r.Map(t); m["token"] != values[1] || m["token_fp"] != events.Fingerprint(values[1]) {
		t.Fatalf("operator's lookup: %s", r.Body)
	}

	// A deep resume (the log's start, an hour back) is for roles that may
	// read values; a shallow one works for readers too, redacted.
	status, raw = readStream(t, pod, reader.Secret, "/tokens/events", "0-0", nil)
	if status != 403 || !bytes.Contains(raw, []byte(`"forbidden"`)) {
		t.Fatalf("reader's deep resume: %d %s", status, raw)
	}
	wantNone(t, "reader's refused resume", raw, all)
	status, raw = readStream(t, pod, operator.Secret, "/tokens/events", "0-0", nil, "ancient-secret-value", values[0], "token_fp")
	if status != 200 {
		t.Fatalf("operator's deep resume: %d %s", status, raw)
	}
	id := firstIDAfter(t, raw, "ancient-secret-value")
	status, raw = readStream(t, pod, reader.Secret, "/tokens/events", id, nil, events.Fingerprint(generated[1]))
	if status != 200 {
		t.Fatalf("reader's shallow resume: %d %s", status, raw)
	}
	wantNone(t, "reader's resume", raw, all)
}

// firstIDAfter returns the id of the event that holds marker.
func firstIDAfter(t testing.TB, raw []byte, marker string) string {
	t.Helper()
	var id string
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			id = v
		}
		if strings.Contains(line, marker) {
			return id
		}
	}
	t.Fatalf("no event holds %q", marker)
	return ""
}

func wantNone(t testing.TB, what string, raw []byte, values []string) {
	t.Helper()
	for _, v := range values {
		if bytes.Contains(raw, []byte(v)) {
			t.Fatalf("%s holds the token value %q: %s", what, v, raw)
		}
	}
}

// waitStatus polls until credential gets want on GET /tokens/stats at pod,
// and returns how long that took.
func waitStatus(t testing.TB, pod *apptest.Pod, credential string, want int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		status, _, _ := statusAs(t, pod, credential, "GET", "/tokens/stats", nil)
		if status == want {
			return time.Since(start)
		}
		if time.Since(start) > within+5*time.Second {
			t.Fatalf("still %d after %s, want %d", status, time.Since(start), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A key created, revoked or expired on one pod counts on another within
// 2 s, without a request to the database on the hot path.
func TestRevocationAndExpiryReachOtherPods(t *testing.T) {
	t.Parallel()
	dbURL := testdb.NewURL(t)
	a := apptest.NewPodOn(t, dbURL)
	b := apptest.NewPodOn(t, dbURL)

	k := a.CreateKey(t, "short-lived", "reader", nil, nil)
	waitStatus(t, b, k.Secret, 200, 2*time.Second)
	wantStatus(t, a.Call(t, "DELETE", "/admin/keys/short-lived", nil), 200)
	if status, _, _ := statusAs(t, a, k.Secret, "GET", "/tokens/stats", nil); status != 401 {
		t.Fatalf("revoked key on the pod that revoked it: %d", status)
	}
	if d := waitStatus(t, b, k.Secret, 401, 2*time.Second); d > 2*time.Second {
		t.Errorf("revocation took %s to reach the other pod, want <= 2s", d)
	}
	wantError(t, a.Call(t, "DELETE", "/admin/keys/short-lived", nil), 404, "key_not_found")

	e := a.CreateKey(t, "expiring", "reader", nil, map[string]any{"expires_in": "1500ms"})
	waitStatus(t, b, e.Secret, 200, 2*time.Second)
	var keys struct {
		Keys []struct {
			Name      string
			ExpiresAt time.Time `json:"expires_at"`
		}
	}
	a.Call(t, "GET", "/admin/keys", nil).JSON(t, &keys)
	var expiresAt time.Time
	for _, k := range keys.Keys {
		if k.Name == "expiring" {
			expiresAt = k.ExpiresAt
		}
	}
	waitStatus(t, b, e.Secret, 401, 3*time.Second)
	if late := time.Since(expiresAt); late > 2*time.Second {
		t.Errorf("expiry counted %s after expires_at, want <= 2s", late)
	}
	// Listing never shows secrets.
	r := a.Call(t, "GET", "/admin/keys", nil)
	wantNone(t, "key list", r.Body, []string{k.Secret, e.Secret, a.AdminKey})
}

// A caller past its bucket gets 429 with Retry-After; others do not notice.
func TestRateLimitPerCaller(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithConfig(func(c *config.Config) { c.RateLimit = 1000 }))
	slow := pod.CreateKey(t, "slow", "reader", nil, map[string]any{"rate_limit": 1})
	limited := false
	for range 20 {
		status, code, hdr := statusAs(t, pod, slow.Secret, "GET", "/tokens/stats", nil)
		if status == 429 {
			if code != "rate_limited" || hdr.Get("Retry-After") == "" || hdr.Get("Retry-After") == "0" {
				t.Fatalf("429 with code %q, Retry-After %q", code, hdr.Get("Retry-After"))
			}
			limited = true
			break
		}
		wantStatus(t, apptest.Response{Status: status}, 200)
	}
	if !limited {
		t.Fatal("20 requests at once never hit a bucket of 1/s, burst 2")
	}
	for range 20 {
		if status, code, _ := statusAs(t, pod, pod.AdminKey, "GET", "/tokens/stats", nil); status != 200 {
			t.Fatalf("another caller: %d %q", status, code)
		}
	}
}

// AUTH=off: every caller is admin.
func TestAuthOff(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithAuthOff())
	r := pod.CallAs(t, apptest.Anonymous, "POST", "/tokens/generate", map[string]any{"count": 1})
	wantStatus(t, r, 201)
	wantStatus(t, pod.CallAs(t, apptest.Anonymous, "GET", "/admin/keys", nil), 200)
}

// A key limited to pools streams, from GET /events without ?pool=, the
// events of its pools only (not 403, not every pool); naming another pool
// is 403.
func TestEventsOfTheCallersPools(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t)
	for _, p := range []string{"a", "b"} {
		wantStatus(t, pod.Call(t, "PUT", "/pools/"+p, nil), 201)
	}
	op := pod.CreateKey(t, "operator-a", "operator", []string{"a"}, nil)
	status, raw := readStream(t, pod, op.Secret, "/events", "", func() {
		wantStatus(t, pod.Call(t, "POST", "/pools/b/tokens/import", map[string]any{"tokens": []string{"value-of-b"}}), 201)
		pod.Import(t, "value-of-default")
		wantStatus(t, pod.Call(t, "POST", "/pools/a/tokens/import", map[string]any{"tokens": []string{"value-of-a"}}), 201)
	}, `"token":"value-of-a"`)
	if status != 200 {
		t.Fatalf("GET /events as a key of pool a: %d %s", status, raw)
	}
	// The log is read in order: b's and default's rows came before a's.
	wantNone(t, "pool a's stream", raw, []string{"value-of-b", "value-of-default", `"pool":"b"`, `"pool":"default"`})
	if !bytes.Contains(raw, []byte(`"pool":"a"`)) {
		t.Fatalf("pool a's stream: %s", raw)
	}
	for _, path := range []string{"/events?pool=b", "/events?pool=a&pool=b", "/events?pool=a,b", "/tokens/events", "/pools/b/tokens/events"} {
		status, code, _ := statusAs(t, pod, op.Secret, "GET", path, nil)
		if status != 403 || code != "forbidden" {
			t.Errorf("GET %s as a key of pool a: %d %q, want 403 forbidden", path, status, code)
		}
	}
	status, raw = readStream(t, pod, op.Secret, "/events?pool=a", "", func() {
		wantStatus(t, pod.Call(t, "POST", "/pools/a/tokens/import", map[string]any{"tokens": []string{"second-of-a"}}), 201)
	}, `"token":"second-of-a"`)
	if status != 200 {
		t.Fatalf("GET /events?pool=a: %d %s", status, raw)
	}
}
