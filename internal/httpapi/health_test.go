package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t, apptest.WithoutSweeper())

	t.Run("healthz and readyz answer 200 on a migrated database", func(t *testing.T) {
		wantStatus(t, pod.Call(t, "GET", "/healthz", nil), http.StatusOK)
		wantStatus(t, pod.Call(t, "GET", "/readyz", nil), http.StatusOK)
	})

	t.Run("readyz answers 503 while migrations are not applied, healthz stays 200", func(t *testing.T) {
		if _, err := pod.App.Pool.Exec(context.Background(), "UPDATE goose_db_version SET is_applied = false WHERE version_id > 0"); err != nil {
			t.Fatal(err)
		}
		r := pod.Call(t, "GET", "/readyz", nil)
		if r.Status != http.StatusServiceUnavailable {
			t.Fatalf("readyz = %d %s, want 503", r.Status, r.Body)
		}
		if err := checkErrorBody(r.Body); err != nil {
			t.Fatalf("%v: %s", err, r.Body)
		}
		wantGenericUnavailable(t, pod, r)
		wantStatus(t, pod.Call(t, "GET", "/healthz", nil), http.StatusOK)

		if _, err := pod.App.Pool.Exec(context.Background(), "UPDATE goose_db_version SET is_applied = true"); err != nil {
			t.Fatal(err)
		}
		wantStatus(t, pod.Call(t, "GET", "/readyz", nil), http.StatusOK)
	})

	t.Run("readyz answers 503 when the database is gone", func(t *testing.T) {
		pod.App.Pool.Close()
		r := pod.Call(t, "GET", "/readyz", nil)
		if r.Status != http.StatusServiceUnavailable {
			t.Fatalf("readyz = %d %s, want 503", r.Status, r.Body)
		}
		wantGenericUnavailable(t, pod, r)
		wantStatus(t, pod.Call(t, "GET", "/healthz", nil), http.StatusOK)
	})
}

// wantGenericUnavailable checks a 503 of /readyz: code unavailable, a
// Retry-After, and nothing of the database's address, user or name.
func wantGenericUnavailable(t *testing.T, pod *apptest.Pod, r apptest.Response) {
	t.Helper()
	wantError(t, r, http.StatusServiceUnavailable, "unavailable")
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("a 503 without Retry-After: %v", r.Header)
	}
	u, err := url.Parse(pod.App.Config.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{u.Host, u.Hostname(), u.User.Username(), strings.TrimPrefix(u.Path, "/")} {
		if secret != "" && strings.Contains(string(r.Body), secret) {
			t.Errorf("readyz tells the client %q: %s", secret, r.Body)
		}
	}
}
