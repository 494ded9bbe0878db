package httpapi_test

import (
	"context"
	"net/http"
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
		wantStatus(t, pod.Call(t, "GET", "/healthz", nil), http.StatusOK)
	})
}
