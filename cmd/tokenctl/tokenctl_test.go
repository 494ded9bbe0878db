package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

type result struct {
	code     int
	out, err string
}

func tokenctl(t *testing.T, ctx context.Context, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, args, stdio{in: strings.NewReader(stdin), out: &out, err: &errb}, func(k string) string { return env[k] })
	return result{code, out.String(), errb.String()}
}

// TestTokenctlEndToEnd drives every token command against a pod and checks
// output and exit codes.
func TestTokenctlEndToEnd(t *testing.T) {
	pod := apptest.NewPod(t)
	env := map[string]string{"TOKENLEASE_URL": pod.URL, "TOKENLEASE_KEY": apptest.AdminKey}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ok := func(stdin string, args ...string) result {
		t.Helper()
		r := tokenctl(t, ctx, env, stdin, args...)
		if r.code != 0 {
			t.Fatalf("tokenctl %v: exit %d, stderr %s", args, r.code, r.err)
		}
		return r
	}
	fails := func(code int, args ...string) {
		t.Helper()
		if r := tokenctl(t, ctx, env, "", args...); r.code != code || r.err == "" {
			t.Fatalf("tokenctl %v: exit %d (%q), want %d", args, r.code, r.err, code)
		}
	}

	var gen struct{ Tokens []string }
	if err := json.Unmarshal([]byte(ok("", "-o", "json", "generate", "2").out), &gen); err != nil || len(gen.Tokens) != 2 {
		t.Fatalf("generate -o json: %v %v", gen, err)
	}
	if r := ok("", "generate", "1"); !strings.HasPrefix(r.out, "TOKEN\n") || len(strings.Fields(r.out)) != 2 {
		t.Fatalf("generate table: %q", r.out)
	}
	if r := ok("", "stats"); !strings.Contains(r.out, "FREE") || strings.Fields(r.out)[5] != "3" {
		t.Fatalf("stats: %q", r.out)
	}

	var a struct {
		Token   string
		LeaseID int64 `json:"lease_id"`
		Holder  string
	}
	r := ok("", "assign", "--holder", "ci-job", "--ttl", "1m", "-o", "json")
	if err := json.Unmarshal([]byte(r.out), &a); err != nil || a.Holder != "ci-job" || a.LeaseID == 0 {
		t.Fatalf("assign: %q %v", r.out, err)
	}
	if r := ok("", "get", a.Token); !strings.Contains(r.out, "assigned") || !strings.Contains(r.out, "ci-job") {
		t.Fatalf("get: %q", r.out)
	}
	ok("", "keep-alive", a.Token, "--lease-id", fmt.Sprint(a.LeaseID))
	fails(3, "keep-alive", a.Token, "--lease-id", fmt.Sprint(a.LeaseID+99))
	fails(3, "unblock", a.Token, "--lease-id", fmt.Sprint(a.LeaseID+99))
	ok("", "unblock", a.Token, "--lease-id", fmt.Sprint(a.LeaseID))
	fails(3, "unblock", a.Token)
	ok("", "delete", a.Token)
	fails(2, "get", a.Token)
	fails(2, "delete", a.Token)
	ok("", "assign")
	ok("", "assign")
	fails(2, "assign")
	fails(1, "generate", "0")
	fails(1, "generate")
	fails(1, "frobnicate")
	fails(1, "stats", "-o", "yaml")
	fails(1, "assign", "--ttl", "soon")
	fails(5, "--url", "http://127.0.0.1:1", "stats")
	if r := tokenctl(t, ctx, env, "", "help"); r.code != 0 || !strings.Contains(r.out, "Exit codes") {
		t.Fatalf("help: %d %q", r.code, r.out)
	}

	// Import from a file, then from stdin: blank lines skipped, values
	// already live reported as existing, batches of 10000.
	dir := t.TempDir()
	var lines []string
	for i := range 10005 {
		lines = append(lines, fmt.Sprintf("lic/%05d key", i))
	}
	file := filepath.Join(dir, "values.txt")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\r\n")+"\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := ok("", "import", file, "-o", "json"); strings.Join(strings.Fields(r.out), "") != `{"existing":0,"imported":10005}` {
		t.Fatalf("import file: %q", r.out)
	}
	if r := ok("lic/00001 key\nnew one\n", "import"); !strings.Contains(r.out, "IMPORTED") || strings.Fields(r.out)[2] != "1" || strings.Fields(r.out)[3] != "1" {
		t.Fatalf("import stdin: %q", r.out)
	}
	if r := ok("", "get", "lic/00001 key"); !strings.Contains(r.out, "free") {
		t.Fatalf("get imported value with / and space: %q", r.out)
	}
	fails(1, "import", filepath.Join(dir, "missing.txt"))
	fails(1, "import", "-", "extra")
}

// TestTokenctlWatch: watch prints one line per event until interrupted,
// then exits 0.
func TestTokenctlWatch(t *testing.T) {
	pod := apptest.NewPod(t)
	env := map[string]string{"TOKENLEASE_URL": pod.URL, "TOKENLEASE_KEY": apptest.AdminKey}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	wctx, stop := context.WithCancel(ctx)
	out := &apptest.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(wctx, []string{"watch", "-o", "json", "--kind", "generated"}, stdio{in: strings.NewReader(""), out: out, err: out},
			func(k string) string { return env[k] })
	}()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(out.String(), "\n") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("watch printed %q", out.String())
		}
		tokenctl(t, ctx, env, "", "generate", "1")
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("watch exit %d: %s", code, out.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev["kind"] != "generated" || ev["id"] == "" {
			t.Fatalf("line %q: %v", line, err)
		}
	}
}

// TestTokenctlPoolsAndKeys drives the pools and keys commands against a pod:
// output, exit codes, and a created key used by the CLI itself.
func TestTokenctlPoolsAndKeys(t *testing.T) {
	pod := apptest.NewPod(t)
	env := map[string]string{"TOKENLEASE_URL": pod.URL, "TOKENLEASE_KEY": apptest.AdminKey}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	as := func(env map[string]string, code int, args ...string) result {
		t.Helper()
		r := tokenctl(t, ctx, env, "", args...)
		if r.code != code || (code != 0 && r.err == "") {
			t.Fatalf("tokenctl %v: exit %d (stderr %q), want %d", args, r.code, r.err, code)
		}
		return r
	}

	var p struct {
		Name      string
		LeaseTTL  string `json:"lease_ttl"`
		MaxTokens int64  `json:"max_tokens"`
	}
	r := as(env, 0, "-o", "json", "pools", "put", "eu-1", "--lease-ttl", "45s", "--max-tokens", "5")
	if err := json.Unmarshal([]byte(r.out), &p); err != nil || p.Name != "eu-1" || p.LeaseTTL != "45s" || p.MaxTokens != 5 {
		t.Fatalf("pools put: %q %v", r.out, err)
	}
	var toks struct{ Tokens []string }
	if err := json.Unmarshal([]byte(as(env, 0, "--pool", "eu-1", "-o", "json", "generate", "2").out), &toks); err != nil || len(toks.Tokens) != 2 {
		t.Fatalf("generate in eu-1: %v %v", toks, err)
	}
	if r := as(env, 0, "pools", "get", "eu-1"); !strings.HasPrefix(r.out, "NAME") || strings.Fields(strings.Split(r.out, "\n")[1])[7] != "2" {
		t.Fatalf("pools get: %q", r.out)
	}
	if r := as(env, 0, "pools", "list"); !strings.Contains(r.out, "\ndefault ") || !strings.Contains(r.out, "\neu-1 ") {
		t.Fatalf("pools list: %q", r.out)
	}
	as(env, 2, "pools", "get", "nope")
	as(env, 3, "pools", "delete", "eu-1")
	as(env, 3, "pools", "delete", "default")
	as(env, 1, "pools", "put", "Bad Name")
	as(env, 3, "--pool", "eu-1", "generate", "4")

	r = as(env, 0, "-o", "json", "keys", "create", "worker-1", "--role", "client", "--pools", "eu-1", "--expires-in", "1h", "--rate-limit", "20")
	var k struct {
		Name, Role, Key string
		Pools           []string
	}
	if err := json.Unmarshal([]byte(r.out), &k); err != nil || k.Name != "worker-1" || k.Role != "client" || !strings.HasPrefix(k.Key, "tl_") || len(k.Pools) != 1 {
		t.Fatalf("keys create: %q %v", r.out, err)
	}
	if !strings.Contains(r.err, "shown once") {
		t.Errorf("keys create says nothing about the secret: %q", r.err)
	}
	as(env, 3, "keys", "create", "worker-1", "--role", "client")
	as(env, 1, "keys", "create", "worker-2")
	if r := as(env, 0, "keys", "list"); !strings.Contains(r.out, "LAST_USED_AT") || !strings.Contains(r.out, "worker-1") || strings.Contains(r.out, k.Key) {
		t.Fatalf("keys list: %q", r.out)
	}

	worker := map[string]string{"TOKENLEASE_URL": pod.URL, "TOKENLEASE_KEY": k.Key}
	as(worker, 0, "--pool", "eu-1", "assign")
	as(worker, 4, "assign")
	as(worker, 4, "keys", "list")

	if r := as(env, 0, "keys", "revoke", "worker-1"); !strings.Contains(r.out, "worker-1") {
		t.Fatalf("keys revoke: %q", r.out)
	}
	as(env, 2, "keys", "revoke", "worker-1")
	as(worker, 4, "--pool", "eu-1", "stats")
	if r := as(env, 0, "-o", "json", "keys", "list"); !strings.Contains(r.out, `"revoked_at"`) {
		t.Fatalf("keys list after revoke: %q", r.out)
	}

	// Emptied, the pool deletes.
	for _, tok := range toks.Tokens {
		as(env, 0, "--pool", "eu-1", "delete", tok)
	}
	if r := as(env, 0, "pools", "delete", "eu-1"); !strings.Contains(r.out, "eu-1") {
		t.Fatalf("pools delete: %q", r.out)
	}
	as(env, 2, "pools", "get", "eu-1")
}
