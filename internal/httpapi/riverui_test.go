package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

// River's UI is for admins: its page, and its JSON API that lists the
// sweeps River has run.
func TestRiverUIIsForAdmins(t *testing.T) {
	t.Parallel()
	pod := apptest.NewPod(t)
	client := pod.CreateKey(t, "river-client", "client", nil, nil)
	operator := pod.CreateKey(t, "river-operator", "operator", nil, nil)

	for _, path := range []string{"/admin/river", "/admin/river/jobs"} {
		r := pod.Do(t, "GET", path, nil)
		if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			t.Errorf("admin GET %s: %d %s, want River UI's page", path, r.Status, r.Header.Get("Content-Type"))
		}
		if !strings.Contains(string(r.Body), "/admin/river") {
			t.Errorf("admin GET %s: the page does not know its prefix: %.300s", path, r.Body)
		}
		wantError(t, pod.DoAs(t, client.Secret, "GET", path, nil), http.StatusForbidden, "forbidden")
		wantError(t, pod.DoAs(t, operator.Secret, "GET", path, nil), http.StatusForbidden, "forbidden")
		wantError(t, pod.DoAs(t, apptest.Anonymous, "GET", path, nil), http.StatusUnauthorized, "unauthenticated")
	}
	wantError(t, riverAPI(t, pod, client.Secret, "/admin/river/api/jobs"), http.StatusForbidden, "forbidden")

	// River UI's JSON API is River's, not ours: the document has one
	// opaque path for it, which the test kit's validating router cannot
	// match across segments, so these calls go around it.
	apptest.Eventually(t, 20*time.Second, "River UI to list a finished sweep", func() bool {
		r := riverAPI(t, pod, pod.AdminKey, "/admin/river/api/jobs?state=completed&kinds=tokenlease_sweep&limit=5")
		if r.Status != http.StatusOK {
			t.Fatalf("GET /admin/river/api/jobs: %d %s", r.Status, r.Body)
		}
		var jobs struct {
			Data []struct {
				Kind string `json:"kind"`
			} `json:"data"`
		}
		if err := json.Unmarshal(r.Body, &jobs); err != nil {
			t.Fatalf("River UI's job list: %v: %s", err, r.Body)
		}
		return len(jobs.Data) > 0 && jobs.Data[0].Kind == "tokenlease_sweep"
	})
}

func riverAPI(t *testing.T, pod *apptest.Pod, credential, path string) apptest.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, pod.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+credential)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}
