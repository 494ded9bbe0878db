package httpapi_test

// Many clients at once: no token is ever held under two live leases, and no
// token is lost.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

// leaseLedger is what the clients know for sure: a lease is live from the
// moment its assign answered until the moment its unblock was sent. Two such
// spans of one token must never overlap.
type leaseLedger struct {
	mu       sync.Mutex
	live     map[string]int64 // token → the lease a client holds
	lastID   map[string]int64 // token → its newest lease id seen
	leases   map[string]int   // token → how many leases it had
	assigns  int
	unblocks int
}

func newLeaseLedger() *leaseLedger {
	return &leaseLedger{live: map[string]int64{}, lastID: map[string]int64{}, leases: map[string]int{}}
}

func (l *leaseLedger) acquired(token string, id int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.assigns++
	if other, ok := l.live[token]; ok {
		return fmt.Errorf("token %s assigned as lease %d while lease %d is held", token, id, other)
	}
	if id <= l.lastID[token] {
		return fmt.Errorf("token %s got lease %d after lease %d", token, id, l.lastID[token])
	}
	l.live[token], l.lastID[token] = id, id
	l.leases[token]++
	return nil
}

func (l *leaseLedger) releasing(token string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unblocks++
	delete(l.live, token)
}

// leaseClient assigns, keeps alive and unblocks at random, holding up to
// three leases, and checks every answer against the ledger.
type leaseClient struct {
	pod    *apptest.Pod
	ledger *leaseLedger
	rng    *rand.Rand
	holder string
	held   []apptest.Lease
}

func (c *leaseClient) run(ctx context.Context) error {
	for ctx.Err() == nil {
		var err error
		switch n := len(c.held); {
		case n == 0 || (n < 3 && c.rng.IntN(2) == 0):
			err = c.assign()
		case c.rng.IntN(3) == 0:
			err = c.keepAlive()
		default:
			err = c.unblock()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c.holder, err)
		}
	}
	return nil
}

func (c *leaseClient) assign() error {
	method, path, body := "POST", "/tokens/assign", any(map[string]any{"holder": c.holder})
	if c.rng.IntN(2) == 0 {
		method, path, body = "GET", "/tokens/assign?holder="+c.holder, nil
	}
	status, b, err := send(c.pod, method, path, body)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("assign: %d %s", status, oneLine(b))
	}
	var l apptest.Lease
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	if l.Holder == nil || *l.Holder != c.holder {
		return fmt.Errorf("assign: holder %v, want %s", l.Holder, c.holder)
	}
	if err := c.ledger.acquired(l.Token, l.LeaseID); err != nil {
		return err
	}
	c.held = append(c.held, l)
	return nil
}

func (c *leaseClient) keepAlive() error {
	l := c.held[c.rng.IntN(len(c.held))]
	body := map[string]any{"token": l.Token}
	if c.rng.IntN(2) == 0 {
		body["lease_id"] = l.LeaseID
	}
	method := [2]string{"POST", "PUT"}[c.rng.IntN(2)]
	status, b, err := send(c.pod, method, "/tokens/keep-alive", body)
	if err != nil {
		return err
	}
	var v apptest.Token
	if status != http.StatusOK || json.Unmarshal(b, &v) != nil ||
		v.State != "assigned" || v.LeaseID == nil || *v.LeaseID != l.LeaseID {
		return fmt.Errorf("keep-alive of held lease %d on %s: %d %s", l.LeaseID, l.Token, status, oneLine(b))
	}
	return nil
}

func (c *leaseClient) unblock() error {
	i := c.rng.IntN(len(c.held))
	l := c.held[i]
	c.held = append(c.held[:i], c.held[i+1:]...)
	c.ledger.releasing(l.Token)
	body := map[string]any{"token": l.Token, "lease_id": l.LeaseID}
	if c.rng.IntN(4) == 0 {
		delete(body, "lease_id") // releases whatever lease is current: ours
	}
	status, b, err := send(c.pod, "POST", "/tokens/unblock", body)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("unblock of held lease %d on %s: %d %s", l.LeaseID, l.Token, status, oneLine(b))
	}
	return nil
}

func TestConcurrentClientsNeverShareALeaseAndLoseNothing(t *testing.T) {
	t.Parallel()
	const poolSize, clients, runFor = 1000, 64, 3 * time.Second
	pod := apptest.NewPod(t)
	generated := pod.Generate(t, poolSize)

	ledger := newLeaseLedger()
	ctx, cancel := context.WithTimeout(context.Background(), runFor)
	defer cancel()
	workers := make([]*leaseClient, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range workers {
		workers[i] = &leaseClient{
			pod: pod, ledger: ledger, holder: fmt.Sprintf("client-%02d", i),
			rng: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano()))),
		}
		wg.Go(func() { errs[i] = workers[i].run(ctx) })
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil && failed < 10 {
			t.Error(err)
			failed++
		}
	}
	if failed > 0 {
		t.FailNow()
	}
	held := map[string]int64{}
	for _, w := range workers {
		for _, l := range w.held {
			held[l.Token] = l.LeaseID
		}
	}
	reused := 0
	for _, n := range ledger.leases {
		if n > 1 {
			reused++
		}
	}
	t.Logf("%d clients: %d assigns, %d unblocks in %s; %d tokens leased more than once; %d leases held at the end",
		clients, ledger.assigns, ledger.unblocks, runFor, reused, len(held))
	if ledger.assigns < clients {
		t.Fatalf("only %d assigns in %s", ledger.assigns, runFor)
	}

	t.Run("the audit trail never shows two live leases on one token", func(t *testing.T) {
		live := map[string]int64{}
		count := map[string]int{}
		for _, e := range auditTrail(t, pod, "assigned", "unblocked", "released") {
			count[e.Kind]++
			switch e.Kind {
			case "assigned":
				if other, ok := live[e.Token]; ok {
					t.Fatalf("audit %d: %s assigned as lease %d while lease %d was live", e.ID, e.Token, *e.LeaseID, other)
				}
				live[e.Token] = *e.LeaseID
			default:
				if live[e.Token] != *e.LeaseID {
					t.Fatalf("audit %d: %s %s lease %d, but the live lease is %d", e.ID, e.Kind, e.Token, *e.LeaseID, live[e.Token])
				}
				delete(live, e.Token)
			}
		}
		if count["assigned"] != ledger.assigns || count["unblocked"] != ledger.unblocks || count["released"] != 0 {
			t.Fatalf("audit counts %v, clients saw %d assigns and %d unblocks", count, ledger.assigns, ledger.unblocks)
		}
		if len(live) != len(held) {
			t.Fatalf("audit ends with %d live leases, clients hold %d", len(live), len(held))
		}
		for tok, id := range held {
			if live[tok] != id {
				t.Fatalf("audit ends with lease %d on %s, client holds %d", live[tok], tok, id)
			}
		}
	})

	t.Run("every token is still there, free or assigned as the clients know", func(t *testing.T) {
		if s := pod.Stats(t); s != (apptest.Stats{Free: poolSize - int64(len(held)), Assigned: int64(len(held)), Total: poolSize}) {
			t.Fatalf("stats = %+v with %d leases held", s, len(held))
		}
		if n := queryInt(t, pod, "SELECT count(*) FROM tokens WHERE value = ANY($1) AND alive_until > now()", generated); n != poolSize {
			t.Fatalf("%d of %d generated tokens are live rows", n, poolSize)
		}
		if n := queryInt(t, pod, "SELECT count(*) FROM tokens WHERE lease_id IS NOT NULL"); n != int64(len(held)) {
			t.Fatalf("%d rows hold a lease, clients hold %d", n, len(held))
		}
		for _, tok := range generated {
			v := pod.Lookup(t, tok)
			id, isHeld := held[tok]
			switch {
			case isHeld && (v.State != "assigned" || *v.LeaseID != id):
				t.Fatalf("held token %s (lease %d) looks up as %+v", tok, id, v)
			case !isHeld && v.State != "free":
				t.Fatalf("unheld token %s looks up as %+v", tok, v)
			}
		}
	})
}
