package client_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/client"
)

// TestPoolAndAdminRoutes checks the exact wire of the pool, key and pooled
// token calls against a stub: method, escaped path and body of each, and the
// decoding of the answers (admin_test.go runs the same calls against a pod).
func TestPoolAndAdminRoutes(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := newStubServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.EscapedPath()+" "+string(b))
		mu.Unlock()
		switch r.Method + " " + r.URL.EscapedPath() {
		case "PUT /pools/eu-1":
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"name":"eu-1","lease_ttl":"30s","keepalive_ttl":300,"max_lease_ttl":"1h0m0s","max_tokens":10,"free":0,"assigned":0,"total":0}`)
		case "GET /pools":
			io.WriteString(w, `{"pools":[{"name":"default","lease_ttl":"1m0s","free":2,"assigned":1,"total":3}]}`)
		case "POST /admin/keys":
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"name":"w1","role":"client","key":"tl_secret"}`)
		case "GET /admin/keys":
			io.WriteString(w, `{"keys":[{"name":"w1","role":"client","pools":["eu-1"]}]}`)
		case "DELETE /pools/default":
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"error":{"code":"pool_protected","message":"default cannot be deleted"}}`)
		case "GET /pools/nope":
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"code":"pool_not_found","message":"no such pool"}}`)
		default:
			io.WriteString(w, `{}`)
		}
	})
	c := newClient(t, srv)
	ctx := testContext(t, 10*time.Second)
	ttl := client.Duration(30 * time.Second)
	p, created, err := c.PutPool(ctx, "eu-1", client.PoolSettings{LeaseTTL: &ttl})
	if err != nil || !created || p.LeaseTTL != ttl || time.Duration(p.KeepaliveTTL) != 5*time.Minute || p.MaxTokens != 10 {
		t.Fatalf("PutPool: %+v %v %v", p, created, err)
	}
	pools, err := c.ListPools(ctx)
	if err != nil || len(pools) != 1 || pools[0].Total != 3 {
		t.Fatalf("ListPools: %+v %v", pools, err)
	}
	if _, err := c.GetPool(ctx, "nope"); !errorsIsAll(err, client.ErrPoolNotFound) {
		t.Fatalf("GetPool: %v", err)
	}
	if err := c.DeletePool(ctx, "default"); !errorsIsAll(err, client.ErrPoolProtected) {
		t.Fatalf("DeletePool default: %v", err)
	}
	k, err := c.CreateKey(ctx, client.KeyRequest{Name: "w1", Role: client.RoleClient, Pools: []string{"eu-1"}})
	if err != nil || k.Key != "tl_secret" || k.Role != "client" {
		t.Fatalf("CreateKey: %+v %v", k, err)
	}
	keys, err := c.ListKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].Pools[0] != "eu-1" {
		t.Fatalf("ListKeys: %+v %v", keys, err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.RevokeKey(ctx, "w1"))
	_, err = c.Generate(ctx, "eu-1", 2)
	must(err)
	_, err = c.Get(ctx, "eu-1", "a/b c")
	must(err)
	_, err = c.Assign(ctx, "eu-1", client.AssignOptions{Holder: "h", TTL: time.Second, Wait: 2 * time.Second})
	must(err)
	must(c.Unblock(ctx, "eu-1", "t", 5))
	_, err = c.KeepAlive(ctx, "eu-1", "t", 0)
	must(err)
	must(c.Delete(context.Background(), "eu-1", "t"))
	_, err = c.Stats(ctx, "eu-1")
	must(err)
	_, err = c.Import(ctx, "eu-1", []string{"v"})
	must(err)
	want := []string{
		`PUT /pools/eu-1 {"lease_ttl":"30s"}`,
		`GET /pools `,
		`GET /pools/nope `,
		`DELETE /pools/default `,
		`POST /admin/keys {"name":"w1","role":"client","pools":["eu-1"]}`,
		`GET /admin/keys `,
		`DELETE /admin/keys/w1 `,
		`POST /pools/eu-1/tokens/generate {"count":2}`,
		`GET /pools/eu-1/tokens/a%2Fb%20c `,
		`POST /pools/eu-1/tokens/assign {"holder":"h","ttl":"1s"}`,
		`POST /pools/eu-1/tokens/unblock {"token":"t","lease_id":5}`,
		`POST /pools/eu-1/tokens/keep-alive {"token":"t"}`,
		`DELETE /pools/eu-1/tokens/delete {"token":"t"}`,
		`GET /pools/eu-1/tokens/stats `,
		`POST /pools/eu-1/tokens/import {"tokens":["v"]}`,
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, want) {
		t.Fatalf("requests:\n%q\nwant\n%q", seen, want)
	}
}
