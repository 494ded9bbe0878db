package app_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/app"
	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/config"
	"github.com/tokenlease/tokenlease/internal/testdb"
)

// runKeys runs `tokend keys args...` in-process against databaseURL and
// returns what it printed.
func runKeys(t *testing.T, databaseURL string, args ...string) (string, error) {
	t.Helper()
	cfg := config.Defaults()
	cfg.DatabaseURL = databaseURL
	var out bytes.Buffer
	err := app.Keys(context.Background(), cfg, args, &out)
	return out.String(), err
}

// statsStatus is the status credential gets on GET /tokens/stats.
func statsStatus(t *testing.T, pod *apptest.Pod, credential string) int {
	t.Helper()
	return pod.DoAs(t, credential, http.MethodGet, "/tokens/stats", nil).Status
}

// listed returns the row of `tokend keys list` for name, split in columns.
func listed(t *testing.T, databaseURL, name string) []string {
	t.Helper()
	out, err := runKeys(t, databaseURL, "list")
	if err != nil {
		t.Fatalf("keys list: %v", err)
	}
	for line := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return f
		}
	}
	t.Fatalf("keys list lacks %s:\n%s", name, out)
	return nil
}

// `tokend keys create|list|revoke` end to end: a key created offline
// authenticates on a running pod, its use shows as last_used_at, and
// revoking it offline makes every pod refuse it within 2 s.
func TestKeysCommandEndToEnd(t *testing.T) {
	t.Parallel()
	dbURL := testdb.NewURL(t)
	pod := apptest.NewPodOn(t, dbURL, apptest.WithKeysTouchEvery(100*time.Millisecond))

	out, err := runKeys(t, dbURL, "create", "-name", "cli-reader", "-role", "reader", "-pools", "default,eu", "-rate-limit", "5")
	if err != nil {
		t.Fatalf("keys create: %v", err)
	}
	secret := strings.TrimSpace(out)
	if !strings.HasPrefix(secret, "tl_") || len(secret) != 46 {
		t.Fatalf("keys create printed %q, want the secret alone", out)
	}
	if _, err := runKeys(t, dbURL, "create", "-name", "cli-reader", "-role", "reader"); err == nil {
		t.Error("creating a key under a taken name succeeded")
	}
	if _, err := runKeys(t, dbURL, "create", "-name", "x", "-role", "boss"); err == nil {
		t.Error("creating a key with an unknown role succeeded")
	}

	apptest.Eventually(t, 2*time.Second, "the offline key authenticates on the pod", func() bool {
		return statsStatus(t, pod, secret) == http.StatusOK
	})
	row := listed(t, dbURL, "cli-reader")
	// NAME ROLE POOLS EXPIRES RATE_LIMIT CREATED REVOKED LAST_USED
	if len(row) != 8 || row[1] != "reader" || row[2] != "default,eu" || row[3] != "-" || row[4] != "5/s" || row[6] != "-" {
		t.Fatalf("keys list row %q", row)
	}
	if list, _ := runKeys(t, dbURL, "list"); strings.Contains(list, secret) || strings.Contains(list, pod.AdminKey) {
		t.Fatal("keys list shows a secret")
	}
	apptest.Eventually(t, 5*time.Second, "last_used_at written after use", func() bool {
		return listed(t, dbURL, "cli-reader")[7] != "-"
	})

	out, err = runKeys(t, dbURL, "revoke", "cli-reader")
	if err != nil || !strings.Contains(out, "revoked cli-reader") {
		t.Fatalf("keys revoke: %q, %v", out, err)
	}
	revoked := time.Now()
	apptest.Eventually(t, 5*time.Second, "the revoked key is refused", func() bool {
		return statsStatus(t, pod, secret) == http.StatusUnauthorized
	})
	if d := time.Since(revoked); d > 2*time.Second {
		t.Errorf("revocation took %s to reach the pod, want <= 2s", d)
	}
	if row := listed(t, dbURL, "cli-reader"); row[6] == "-" {
		t.Errorf("keys list after revoke: %q, want REVOKED set", row)
	}
	if _, err := runKeys(t, dbURL, "revoke", "no-such-key"); err == nil {
		t.Error("revoking an unknown key succeeded")
	}
	if _, err := runKeys(t, dbURL, "frobnicate"); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("unknown subcommand: %v, want the usage", err)
	}
}

// A malformed BOOTSTRAP_ADMIN_KEY stops start-up with a message that names
// the variable and does not repeat its value: from the environment (what
// tokend reads) and when a pod is built from an unchecked configuration.
func TestMalformedBootstrapAdminKeyStopsStartUp(t *testing.T) {
	const bad = "tl_not-a-real-key-but-a-secret-nonetheless"
	t.Setenv("BOOTSTRAP_ADMIN_KEY", bad)
	_, err := config.Load()
	if err == nil || !strings.Contains(err.Error(), "BOOTSTRAP_ADMIN_KEY") || strings.Contains(err.Error(), bad) {
		t.Fatalf("config.Load: %v, want an error naming BOOTSTRAP_ADMIN_KEY without its value", err)
	}

	cfg := config.Defaults()
	cfg.DatabaseURL = testdb.NewURL(t)
	cfg.BootstrapAdminKey = bad
	a, err := app.New(context.Background(), cfg, app.Options{DisableJobs: true})
	if err == nil {
		a.Close(context.Background())
		t.Fatal("a pod started with a malformed BOOTSTRAP_ADMIN_KEY")
	}
	if !strings.Contains(err.Error(), "BOOTSTRAP_ADMIN_KEY") || strings.Contains(err.Error(), bad) {
		t.Fatalf("app.New: %v, want an error naming BOOTSTRAP_ADMIN_KEY without its value", err)
	}
}
