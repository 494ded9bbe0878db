package client_test

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/client"
	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/testdb"
	"github.com/tokenlease/tokenlease/internal/testpg"
)

// TestLeaseRenewsItself: a 600ms lease stays held over several TTLs, its
// lease_expires_at on the server moving forward.
func TestLeaseRenewsItself(t *testing.T) {
	pod := apptest.NewPod(t)
	c := newClient(t, pod.URL)
	ctx := testContext(t, 60*time.Second)
	if _, err := c.Generate(ctx, "", 1); err != nil {
		t.Fatal(err)
	}
	l, err := c.Acquire(ctx, "", client.AcquireOptions{Holder: "renewer", TTL: 600 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Get(ctx, "", l.Token())
	if err != nil || first.LeaseID != l.LeaseID() || first.Holder != "renewer" {
		t.Fatalf("Get: %+v %v", first, err)
	}
	last := first.LeaseExpiresAt
	advances := 0
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(150 * time.Millisecond) {
		select {
		case <-l.Done():
			t.Fatalf("lease lost: %v", l.Err())
		default:
		}
		info, err := c.Get(ctx, "", l.Token())
		if err != nil || info.State != "assigned" || info.LeaseID != l.LeaseID() {
			t.Fatalf("the lease lapsed on the server: %+v %v", info, err)
		}
		if info.LeaseExpiresAt.After(last) {
			advances++
			last = info.LeaseExpiresAt
		}
	}
	if advances < 3 {
		t.Fatalf("lease_expires_at advanced %d times over 5 TTLs", advances)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	<-l.Done()
	if !errors.Is(l.Err(), client.ErrLeaseReleased) {
		t.Fatalf("Err after Release: %v", l.Err())
	}
	if info, err := c.Get(ctx, "", l.Token()); err != nil || info.State != "free" {
		t.Fatalf("after Release: %+v %v", info, err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("second Release: %v", err)
	}
}

// TestLeaseLostWhenRefused: someone unblocks the token behind the holder's
// back; the next renewal is refused and Done closes long before the TTL.
func TestLeaseLostWhenRefused(t *testing.T) {
	pod := apptest.NewPod(t)
	c := newClient(t, pod.URL)
	ctx := testContext(t, 60*time.Second)
	if _, err := c.Generate(ctx, "", 1); err != nil {
		t.Fatal(err)
	}
	l, err := c.Acquire(ctx, "", client.AcquireOptions{TTL: 30 * time.Second, RenewFraction: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Unblock(ctx, "", l.Token(), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed 10s after the lease was taken away (TTL 30s, renewals every 300ms)")
	}
	if !errors.Is(l.Err(), client.ErrLeaseLost) || !errors.Is(l.Err(), client.ErrLeaseMismatch) {
		t.Fatalf("Err: %v", l.Err())
	}
	if l.Context().Err() == nil {
		t.Fatal("Context not cancelled")
	}
}

// TestLeaseLostBeforeServerExpiryWhenBlocked: renewals stall in a proxy;
// Done closes while the server still holds the lease (by the server's own
// clock: a lookup made after Done still shows it live), and the server
// lets it lapse only later.
func TestLeaseLostBeforeServerExpiryWhenBlocked(t *testing.T) {
	pod := apptest.NewPod(t)
	px := newProxy(t, pod.URL)
	direct := newClient(t, pod.URL)
	c := newClient(t, px.URL)
	ctx := testContext(t, 60*time.Second)
	if _, err := direct.Generate(ctx, "", 1); err != nil {
		t.Fatal(err)
	}
	l, err := c.Acquire(ctx, "", client.AcquireOptions{TTL: 3 * time.Second, SafetyMargin: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Let one renewal through, then stall everything.
	first := l.Deadline()
	apptest.Eventually(t, 10*time.Second, "a renewal", func() bool { return l.Deadline().After(first) })
	px.Stall()
	select {
	case <-l.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed 10s after renewals stalled (TTL 3s)")
	}
	info, err := direct.Get(ctx, "", l.Token())
	if err != nil || info.State != "assigned" || info.LeaseID != l.LeaseID() {
		t.Fatalf("when Done closed the server had already let the lease go: %+v %v", info, err)
	}
	if !errors.Is(l.Err(), client.ErrLeaseLost) {
		t.Fatalf("Err: %v", l.Err())
	}
	apptest.Eventually(t, 10*time.Second, "the server-side lapse", func() bool {
		info, err := direct.Get(ctx, "", l.Token())
		return err == nil && info.State == "free"
	})
}

// TestLeaseSurvivesPodKill: two pods on one database; the pod the client
// uses dies (its proxy stops listening and cuts every connection, as a
// kill -9 looks from outside); renewals fail over to the other pod and the
// lease is never lost.
func TestLeaseSurvivesPodKill(t *testing.T) {
	dbURL := testdb.NewURL(t)
	a := apptest.NewPodOn(t, dbURL)
	b := apptest.NewPodOn(t, dbURL)
	pxA := newProxy(t, a.URL)
	c := newClient(t, pxA.URL, b.URL)
	direct := newClient(t, b.URL)
	ctx := testContext(t, 60*time.Second)
	if _, err := direct.Generate(ctx, "", 1); err != nil {
		t.Fatal(err)
	}
	l, err := c.Acquire(ctx, "", client.AcquireOptions{TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	first := l.Deadline()
	apptest.Eventually(t, 10*time.Second, "a renewal through pod A", func() bool { return l.Deadline().After(first) })
	pxA.Kill()
	killed := time.Now()
	before, _ := direct.Get(ctx, "", l.Token())
	for time.Since(killed) < 4*time.Second {
		select {
		case <-l.Done():
			t.Fatalf("lease lost after the pod died: %v", l.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	after, err := direct.Get(ctx, "", l.Token())
	if err != nil || after.LeaseID != l.LeaseID() || !after.LeaseExpiresAt.After(before.LeaseExpiresAt) {
		t.Fatalf("lease not renewed through pod B: before %+v, after %+v %v", before, after, err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("Release through pod B: %v", err)
	}
}

// TestAcquireWaits: Acquire with Wait gets a token freed meanwhile.
func TestAcquireWaits(t *testing.T) {
	pod := apptest.NewPod(t)
	c := newClient(t, pod.URL)
	ctx := testContext(t, 60*time.Second)
	if _, err := c.Generate(ctx, "", 1); err != nil {
		t.Fatal(err)
	}
	held, err := c.Acquire(ctx, "", client.AcquireOptions{TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Acquire(ctx, "", client.AcquireOptions{}); !errors.Is(err, client.ErrNoFreeToken) {
		t.Fatalf("Acquire without a free token: %v", err)
	}
	go func() {
		time.Sleep(500 * time.Millisecond)
		held.Release(ctx)
	}()
	l, err := c.Acquire(ctx, "", client.AcquireOptions{TTL: 2 * time.Second, Wait: 20 * time.Second})
	if err != nil {
		t.Fatalf("Acquire with Wait: %v", err)
	}
	if l.Token() != held.Token() || l.LeaseID() <= held.LeaseID() {
		t.Fatalf("got %s/%d after %s/%d", l.Token(), l.LeaseID(), held.Token(), held.LeaseID())
	}
	l.Release(ctx)
}

// TestLeaseSurvivesDatabaseRestart: the pod's PostgreSQL restarts (fast:
// every session ends) while a 3s lease is held, and stays down past the
// time a renewal is due; renewals meet 503s, retry through the outage, and
// the lease is never lost and still held after.
func TestLeaseSurvivesDatabaseRestart(t *testing.T) {
	cluster := testpg.Start(t)
	pod := apptest.NewPodOn(t, cluster.URL("tokens"))
	renewals := &statusLog{next: http.DefaultTransport}
	c, err := client.New(client.Options{BaseURLs: []string{pod.URL}, APIKey: apptest.AdminKey, RequestTimeout: 10 * time.Second,
		HTTPClient: &http.Client{Transport: renewals}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, 60*time.Second)
	if _, err := c.Generate(ctx, "", 1); err != nil {
		t.Fatal(err)
	}
	const ttl = 3 * time.Second
	l, err := c.Acquire(ctx, "", client.AcquireOptions{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	first := l.Deadline()
	apptest.Eventually(t, 10*time.Second, "a first renewal", func() bool { return l.Deadline().After(first) })
	before, err := c.Get(ctx, "", l.Token())
	if err != nil {
		t.Fatal(err)
	}

	cluster.Stop(testpg.Fast)
	// Down until a renewal is overdue (renewals go every TTL/3; the local
	// deadline is TTL - 10% after the last one), with 1.5 s left to renew.
	down := l.Deadline()
	for time.Until(down) > 1500*time.Millisecond {
		time.Sleep(20 * time.Millisecond)
	}
	cluster.Start()
	select {
	case <-l.Done():
		t.Fatalf("lease lost during the outage: %v", l.Err())
	default:
	}
	apptest.Eventually(t, 10*time.Second, "a renewal after the restart", func() bool {
		select {
		case <-l.Done():
			t.Fatalf("lease lost across the restart: %v", l.Err())
		default:
		}
		return l.Deadline().After(down)
	})
	if n := renewals.failed(); n == 0 {
		t.Fatal("no renewal met the outage: the test tested nothing")
	}
	for end := time.Now().Add(ttl + time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		select {
		case <-l.Done():
			t.Fatalf("lease lost after the restart: %v", l.Err())
		default:
		}
	}
	after, err := c.Get(ctx, "", l.Token())
	if err != nil || after.State != "assigned" || after.LeaseID != l.LeaseID() || !after.LeaseExpiresAt.After(before.LeaseExpiresAt) {
		t.Fatalf("after the restart: %+v %v, want lease %d still held and renewed past %s", after, err, l.LeaseID(), before.LeaseExpiresAt)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
}

// statusLog counts keep-alive requests that did not get a 200.
type statusLog struct {
	next http.RoundTripper
	mu   sync.Mutex
	bad  int
}

func (s *statusLog) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if strings.HasSuffix(req.URL.Path, "/keep-alive") && (err != nil || resp.StatusCode != http.StatusOK) {
		s.mu.Lock()
		s.bad++
		s.mu.Unlock()
	}
	return resp, err
}

func (s *statusLog) failed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bad
}
