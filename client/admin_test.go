package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/client"
	"github.com/tokenlease/tokenlease/internal/apptest"
)

// TestPoolsAgainstAPod: the pool calls and the token calls on a named pool
// against a real pod, with the server's answers and error codes.
func TestPoolsAgainstAPod(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t)
	c := newClient(t, pod.URL)
	ctx := testContext(t, 60*time.Second)

	ttl, ka := client.Duration(30*time.Second), client.Duration(90*time.Second)
	maxTokens := int64(10)
	p, created, err := c.PutPool(ctx, "eu-1", client.PoolSettings{LeaseTTL: &ttl, KeepaliveTTL: &ka, MaxTokens: &maxTokens})
	if err != nil || !created || p.Name != "eu-1" || p.LeaseTTL != ttl || p.KeepaliveTTL != ka || p.MaxTokens != 10 || p.MaxLeaseTTL <= 0 {
		t.Fatalf("PutPool (create): %+v %v %v", p, created, err)
	}
	ttl = client.Duration(2 * time.Second)
	if p, created, err = c.PutPool(ctx, "eu-1", client.PoolSettings{LeaseTTL: &ttl, MaxTokens: &maxTokens}); err != nil || created || p.LeaseTTL != ttl {
		t.Fatalf("PutPool (update): %+v %v %v", p, created, err)
	}
	if _, _, err := c.PutPool(ctx, "Not A Name", client.PoolSettings{}); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("PutPool with a bad name: %v", err)
	}

	gen, err := c.Generate(ctx, "eu-1", 2)
	if err != nil || len(gen) != 2 {
		t.Fatalf("Generate in eu-1: %v %v", gen, err)
	}
	if imp, err := c.Import(ctx, "eu-1", []string{"eu value/1", gen[0]}); err != nil || len(imp.Imported) != 1 || len(imp.Existing) != 1 {
		t.Fatalf("Import in eu-1: %+v %v", imp, err)
	}
	if _, err := c.Generate(ctx, "eu-1", 8); !errors.Is(err, client.ErrPoolFull) {
		t.Fatalf("Generate past max_tokens: %v", err)
	}
	a, err := c.Assign(ctx, "eu-1", client.AssignOptions{Holder: "sdk"})
	if err != nil || a.Holder != "sdk" {
		t.Fatalf("Assign in eu-1: %+v %v", a, err)
	}
	// The pool's own lease TTL applies.
	if d := time.Until(a.LeaseExpiresAt); d > 3*time.Second {
		t.Errorf("lease expires in %s, want the pool's 2s", d)
	}
	if info, err := c.KeepAlive(ctx, "eu-1", a.Token, a.LeaseID); err != nil || info.LeaseID != a.LeaseID || info.State != "assigned" {
		t.Fatalf("KeepAlive in eu-1: %+v %v", info, err)
	}
	if info, err := c.Get(ctx, "eu-1", a.Token); err != nil || info.Holder != "sdk" {
		t.Fatalf("Get in eu-1: %+v %v", info, err)
	}
	if _, err := c.Get(ctx, "", a.Token); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get of eu-1's token in default: %v", err)
	}
	if err := c.Unblock(ctx, "eu-1", a.Token, a.LeaseID+1); !errors.Is(err, client.ErrLeaseMismatch) {
		t.Fatalf("Unblock with a stale lease: %v", err)
	}
	if err := c.Unblock(ctx, "eu-1", a.Token, a.LeaseID); err != nil {
		t.Fatalf("Unblock: %v", err)
	}
	if s, err := c.Stats(ctx, "eu-1"); err != nil || s != (client.Stats{Free: 3, Total: 3}) {
		t.Fatalf("Stats of eu-1: %+v %v", s, err)
	}

	got, err := c.GetPool(ctx, "eu-1")
	if err != nil || got.Total != 3 || got.Free != 3 || got.LeaseTTL != ttl || got.KeepaliveTTL <= 0 {
		t.Fatalf("GetPool: %+v %v", got, err)
	}
	if _, err := c.GetPool(ctx, "nope"); !errors.Is(err, client.ErrPoolNotFound) {
		t.Fatalf("GetPool of an unknown pool: %v", err)
	}
	if _, err := c.Stats(ctx, "nope"); !errors.Is(err, client.ErrPoolNotFound) {
		t.Fatalf("Stats of an unknown pool: %v", err)
	}
	pools, err := c.ListPools(ctx)
	var names []string
	for _, p := range pools {
		names = append(names, p.Name)
	}
	if err != nil || !slices.Contains(names, "default") || !slices.Contains(names, "eu-1") {
		t.Fatalf("ListPools: %v %v", names, err)
	}

	if err := c.DeletePool(ctx, "eu-1"); !errors.Is(err, client.ErrPoolNotEmpty) {
		t.Fatalf("DeletePool of a pool with tokens: %v", err)
	}
	if err := c.DeletePool(ctx, "default"); !errors.Is(err, client.ErrPoolProtected) {
		t.Fatalf("DeletePool default: %v", err)
	}
	for _, v := range append(gen, "eu value/1") {
		if err := c.Delete(ctx, "eu-1", v); err != nil {
			t.Fatalf("Delete %q: %v", v, err)
		}
	}
	if err := c.DeletePool(ctx, "eu-1"); err != nil {
		t.Fatalf("DeletePool of an empty pool: %v", err)
	}
	if _, err := c.GetPool(ctx, "eu-1"); !errors.Is(err, client.ErrPoolNotFound) {
		t.Fatalf("GetPool after delete: %v", err)
	}
}

// TestKeysAgainstAPod: the key calls against a real pod; a created key
// works with its role and pools; a revoked key is refused.
func TestKeysAgainstAPod(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t)
	admin := newClient(t, pod.URL)
	ctx := testContext(t, 60*time.Second)
	if _, _, err := admin.PutPool(ctx, "eu-1", client.PoolSettings{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Generate(ctx, "eu-1", 1); err != nil {
		t.Fatal(err)
	}

	exp, rate := client.Duration(time.Hour), 50.0
	k, err := admin.CreateKey(ctx, client.KeyRequest{Name: "worker-1", Role: client.RoleClient, Pools: []string{"eu-1"}, ExpiresIn: &exp, RateLimit: &rate})
	if err != nil || len(k.Key) != 46 || k.Name != "worker-1" || k.Role != "client" || !slices.Equal(k.Pools, []string{"eu-1"}) ||
		k.RateLimit != 50 || k.CreatedAt.IsZero() || time.Until(k.ExpiresAt) < 59*time.Minute {
		t.Fatalf("CreateKey: %+v %v", k.KeyInfo, err)
	}
	if _, err := admin.CreateKey(ctx, client.KeyRequest{Name: "worker-1", Role: client.RoleClient}); !errors.Is(err, client.ErrKeyExists) {
		t.Fatalf("CreateKey of a taken name: %v", err)
	}
	if _, err := admin.CreateKey(ctx, client.KeyRequest{Name: "x", Role: "boss"}); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("CreateKey with an unknown role: %v", err)
	}

	worker, err := client.New(client.Options{BaseURLs: []string{pod.URL}, APIKey: k.Key, RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l, err := worker.Acquire(ctx, "eu-1", client.AcquireOptions{TTL: 10 * time.Second})
	if err != nil {
		t.Fatalf("Acquire as the new key: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := worker.Assign(ctx, "", client.AssignOptions{}); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("Assign outside the key's pools: %v", err)
	}
	if _, err := worker.Generate(ctx, "eu-1", 1); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("Generate as a client: %v", err)
	}
	if _, err := worker.ListKeys(ctx); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("ListKeys as a client: %v", err)
	}

	keys, err := admin.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(keys, func(k client.KeyInfo) bool { return k.Name == "worker-1" })
	if i < 0 || keys[i].Role != "client" || !slices.Equal(keys[i].Pools, []string{"eu-1"}) || keys[i].ExpiresAt.IsZero() ||
		keys[i].RateLimit != 50 || !keys[i].RevokedAt.IsZero() {
		t.Fatalf("ListKeys: %+v", keys)
	}

	if err := admin.RevokeKey(ctx, "worker-1"); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if err := admin.RevokeKey(ctx, "worker-1"); !errors.Is(err, client.ErrKeyNotFound) {
		t.Fatalf("RevokeKey of a revoked key: %v", err)
	}
	if err := admin.RevokeKey(ctx, "nobody"); !errors.Is(err, client.ErrKeyNotFound) {
		t.Fatalf("RevokeKey of an unknown key: %v", err)
	}
	if _, err := worker.Stats(ctx, "eu-1"); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("a revoked key on the pod that revoked it: %v", err)
	}
	keys, _ = admin.ListKeys(ctx)
	if i := slices.IndexFunc(keys, func(k client.KeyInfo) bool { return k.Name == "worker-1" }); i < 0 || keys[i].RevokedAt.IsZero() {
		t.Fatalf("ListKeys after revoke: %+v", keys)
	}
}

// TestEventsOfSeveralPoolsAgainstAPod: Events over two named pools gets
// their events in order, with pool and actor, and nothing of a third.
func TestEventsOfSeveralPoolsAgainstAPod(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t)
	c := newClient(t, pod.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, p := range []string{"a", "b", "c"} {
		if _, _, err := c.PutPool(ctx, p, client.PoolSettings{}); err != nil {
			t.Fatal(err)
		}
	}
	received, done := collect(ctx, c, client.EventsFilter{Pools: []string{"a", "b"}, Kinds: []string{"imported"}})
	// The stream starts "now": import into a until an event shows it open.
	probes := 0
	apptest.Eventually(t, 20*time.Second, "the stream to open", func() bool {
		if len(received()) > 0 {
			return true
		}
		probes++
		if _, err := c.Import(ctx, "a", []string{fmt.Sprintf("probe-%d", probes)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		return len(received()) > 0
	})
	for _, step := range []struct{ pool, value string }{{"c", "in-c"}, {"b", "in-b"}, {"a", "in-a"}} {
		if _, err := c.Import(ctx, step.pool, []string{step.value}); err != nil {
			t.Fatal(err)
		}
	}
	apptest.Eventually(t, 20*time.Second, "the event of in-a", func() bool {
		evs := received()
		return len(evs) > 0 && evs[len(evs)-1].Token == "in-a"
	})
	var seen []string
	for _, ev := range received() {
		if ev.Actor != "bootstrap-admin" || ev.Version != 1 {
			t.Errorf("event %+v: want actor bootstrap-admin, version 1", ev)
		}
		if !strings.HasPrefix(ev.Token, "probe-") {
			seen = append(seen, ev.Pool+":"+ev.Token)
		}
	}
	if want := []string{"b:in-b", "a:in-a"}; !slices.Equal(seen, want) {
		t.Fatalf("events of pools a and b: %v, want %v", seen, want)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
