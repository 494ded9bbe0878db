package httpapi_test

// Pools are isolated: tokens never leave their pool, leases, counters, TTLs
// and waiting are per pool.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/testdb"
)

func TestPoolIsolationUnderConcurrency(t *testing.T) {
	t.Parallel()
	dbURL := testdb.NewURL(t)
	pods := []*apptest.Pod{apptest.NewPodOn(t, dbURL), apptest.NewPodOn(t, dbURL)}
	pools := []string{"p1", "p2", "p3", "p4"}
	owner := map[string]string{} // token -> pool
	for i, p := range pools {
		// Different TTLs per pool, all longer than the test, so that every
		// lease ends by its unblock.
		putPool(t, pods[0], p, map[string]any{"lease_ttl": fmt.Sprintf("%ds", 30+10*i), "keepalive_ttl": fmt.Sprintf("%dm", 2+i)}, http.StatusCreated)
		for _, tok := range generateIn(t, pods[0], p, 6) {
			owner[tok] = p
		}
	}
	// Two pools share a value: it must still never be held twice in one pool.
	for _, p := range pools[:2] {
		r := pods[0].Call(t, "POST", in(p)+"/import", map[string]any{"tokens": []string{"same-value"}})
		wantStatus(t, r, http.StatusCreated)
	}

	var mu sync.Mutex
	held := map[string]bool{} // pool + "/" + token -> held now
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pod, pool := pods[g%2], pools[g%4]
			for ctx.Err() == nil {
				status, body, err := send(pod, "POST", in(pool)+"/assign", nil)
				if err != nil {
					fail(err)
					return
				}
				if status == http.StatusNotFound && errorCodeOf(body) == "no_free_token" {
					continue
				}
				if status != http.StatusOK {
					fail(fmt.Errorf("assign in %s: %d %s", pool, status, oneLine(body)))
					return
				}
				var l apptest.Lease
				if err := json.Unmarshal(body, &l); err != nil {
					fail(err)
					return
				}
				if l.Token != "same-value" && owner[l.Token] != pool {
					fail(fmt.Errorf("assign in %s returned %q of pool %q", pool, l.Token, owner[l.Token]))
					return
				}
				key := pool + "/" + l.Token
				mu.Lock()
				double := held[key]
				held[key] = true
				mu.Unlock()
				if double {
					fail(fmt.Errorf("%s handed out while held", key))
					return
				}
				mu.Lock()
				held[key] = false // before the release: it may be handed out the moment it commits
				mu.Unlock()
				status, body, err = send(pod, "POST", in(pool)+"/unblock", map[string]any{"token": l.Token, "lease_id": l.LeaseID})
				if err != nil || status != http.StatusOK {
					fail(fmt.Errorf("unblock %s: %d %s %v", key, status, oneLine(body), err))
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}

	pod := pods[0]
	for _, p := range pools {
		s := statsIn(t, pod, p)
		rows := queryInt(t, pod, `SELECT count(*) FROM tokens t JOIN pools p ON p.id = t.pool_id WHERE p.name = $1`, p)
		leased := queryInt(t, pod, `SELECT count(*) FROM tokens t JOIN pools p ON p.id = t.pool_id WHERE p.name = $1 AND t.lease_id IS NOT NULL`, p)
		if s.Total != rows || s.Assigned != leased {
			t.Errorf("pool %s: stats %+v, rows %d with a lease %d", p, s, rows, leased)
		}
		// The audit trail: per token of the pool, assigned and its end alternate.
		doubles := queryInt(t, pod, `
			WITH o AS (
			    SELECT e.kind, lag(e.kind) OVER (PARTITION BY e.token_id ORDER BY e.version) AS prev
			    FROM token_events e JOIN pools p ON p.id = e.pool_id
			    WHERE p.name = $1 AND e.kind IN ('assigned', 'unblocked', 'released'))
			SELECT count(*) FROM o WHERE kind = 'assigned' AND prev = 'assigned'`, p)
		if doubles != 0 {
			t.Errorf("pool %s: the audit shows %d leases taken over a live one", p, doubles)
		}
		foreign := queryInt(t, pod, `
			SELECT count(*) FROM token_events e JOIN tokens t ON t.id = e.token_id
			WHERE e.pool_id <> t.pool_id`)
		if foreign != 0 {
			t.Errorf("%d audit rows name another pool than their token's", foreign)
		}
	}
}

func TestWaiterIsWokenOnlyByItsPool(t *testing.T) {
	t.Parallel()
	dbURL := testdb.NewURL(t)
	waiting, other := apptest.NewPodOn(t, dbURL), apptest.NewPodOn(t, dbURL)
	putPool(t, other, "a", nil, http.StatusCreated)
	putPool(t, other, "b", nil, http.StatusCreated)
	tokA := generateIn(t, other, "a", 1)[0]
	tokB := generateIn(t, other, "b", 1)[0]
	la := assignIn(t, other, "a", nil)
	lb := assignIn(t, other, "b", nil)

	type result struct {
		status int
		body   []byte
	}
	got := make(chan result, 1)
	go func() {
		status, body, _ := send(waiting, "POST", in("a")+"/assign?wait=10s", nil)
		got <- result{status, body}
	}()
	apptest.Eventually(t, 5*time.Second, "the assign to wait", func() bool { return waiting.App.Waiter.Waiting() == 1 })

	// A token freed in pool b is not for the waiter of pool a.
	wantStatus(t, other.Call(t, "POST", in("b")+"/unblock", map[string]any{"token": tokB, "lease_id": lb.LeaseID}), http.StatusOK)
	select {
	case r := <-got:
		t.Fatalf("the waiter of pool a answered after a release in pool b: %d %s", r.status, r.body)
	case <-time.After(750 * time.Millisecond):
	}
	if s := statsIn(t, other, "b"); s.Free != 1 {
		t.Fatalf("pool b stats = %+v, want its token free", s)
	}

	// Freed in pool a, on the other pod: the waiter gets it.
	wantStatus(t, other.Call(t, "POST", in("a")+"/unblock", map[string]any{"token": tokA, "lease_id": la.LeaseID}), http.StatusOK)
	select {
	case r := <-got:
		if r.status != http.StatusOK {
			t.Fatalf("waiter: %d %s", r.status, r.body)
		}
		var l apptest.Lease
		if err := json.Unmarshal(r.body, &l); err != nil || l.Token != tokA {
			t.Fatalf("the waiter of pool a got %s, want %q", r.body, tokA)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter of pool a was not served within 5s of a release in pool a")
	}
}

func TestPoolTTLsLapseAndDieOnTheirOwn(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	putPool(t, pod, "fast", map[string]any{"lease_ttl": "300ms", "keepalive_ttl": "1200ms"}, http.StatusCreated)
	putPool(t, pod, "slow", map[string]any{"lease_ttl": "1m", "keepalive_ttl": "10m"}, http.StatusCreated)
	fast := generateIn(t, pod, "fast", 1)[0]
	slow := generateIn(t, pod, "slow", 1)[0]
	assignIn(t, pod, "fast", nil)
	assignIn(t, pod, "slow", nil)

	apptest.Eventually(t, 5*time.Second, "the fast pool's lease to lapse", func() bool {
		return lookupIn(t, pod, "fast", fast).State == "free"
	})
	if v := lookupIn(t, pod, "slow", slow); v.State != "assigned" {
		t.Fatalf("the slow pool's lease lapsed with the fast one's: %+v", v)
	}
	apptest.Eventually(t, 5*time.Second, "the fast pool's token to die", func() bool {
		return pod.Call(t, "GET", in("fast")+"/"+fast, nil).Status == http.StatusNotFound
	})
	if v := lookupIn(t, pod, "slow", slow); v.State != "assigned" {
		t.Fatalf("the slow pool's token changed when the fast one died: %+v", v)
	}
	// No sweep ran: the rows are still there, the deadlines alone decided.
	if n := queryInt(t, pod, `SELECT count(*) FROM tokens`); n != 2 {
		t.Fatalf("%d token rows, want 2 (no sweep)", n)
	}
}
