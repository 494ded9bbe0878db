package apidoctest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tokenlease/tokenlease/internal/apidoc/apidoctest"
)

// recorder is a testing.TB that keeps the errors the transport reports.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Helper() {}

// TestTransportCatchesDrift runs answers of a fake server through the
// transport: the documented ones pass, each kind of drift is reported.
func TestTransportCatchesDrift(t *testing.T) {
	cases := []struct {
		name, method, path, reqBody string
		status                      int
		ctype, respBody             string
		wantErr                     string // "" for none
	}{
		{"documented stats", "GET", "/tokens/stats", "", 200, "application/json; charset=utf-8", `{"free":1,"assigned":0,"total":1}`, ""},
		{"extra field", "GET", "/tokens/stats", "", 200, "application/json", `{"free":1,"assigned":0,"total":1,"x":1}`, "x"},
		{"undocumented status", "GET", "/tokens/stats", "", 418, "application/json", `{"error":{"code":"teapot","message":"m"}}`, "status is not supported"},
		{"wrong error code", "POST", "/tokens/unblock", `{"token":"a"}`, 409, "application/json", `{"error":{"code":"not_found","message":"m"}}`, "code"},
		{"documented error code", "POST", "/tokens/unblock", `{"token":"a"}`, 409, "application/json", `{"error":{"code":"lease_mismatch","message":"m"}}`, ""},
		{"accepted invalid request", "POST", "/tokens/generate", `{"count":0}`, 201, "application/json", `{"tokens":[]}`, "accepted a request"},
		{"refused invalid request", "POST", "/tokens/generate", `{"count":0}`, 400, "application/json", `{"error":{"code":"invalid_request","message":"m"}}`, ""},
		{"wrong content type", "GET", "/healthz", "", 200, "text/plain", `ok`, "text/plain"},
		{"event stream", "GET", "/tokens/events", "", 200, "text/event-stream", ": ok\n\n", ""},
		{"stream where none is documented", "GET", "/tokens/stats", "", 200, "text/event-stream", ": ok\n\n", "text/event-stream"},
		{"unknown route", "GET", "/nowhere", "", 404, "application/json", `{"error":{"code":"route_not_found","message":"no such route"}}`, ""},
		{"unknown route, other answer", "GET", "/nowhere", "", 200, "application/json", `{}`, "route_not_found"},
		{"wrong method", "POST", "/healthz", "", 405, "application/json", `{"error":{"code":"method_not_allowed","message":"m"}}`, ""},
		{"route word as a token", "DELETE", "/tokens/stats", "", 404, "application/json", `{"error":{"code":"not_found","message":"m"}}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.respBody)
			}))
			defer srv.Close()
			rec := &recorder{TB: t}
			c := &http.Client{Transport: apidoctest.NewValidatingTransport(rec, nil)}
			var body *strings.Reader
			if tc.reqBody != "" {
				body = strings.NewReader(tc.reqBody)
			} else {
				body = strings.NewReader("")
			}
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, body)
			if tc.reqBody != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := strings.Join(rec.errs, "\n")
			switch {
			case tc.wantErr == "" && got != "":
				t.Errorf("reported %q, want nothing", got)
			case tc.wantErr != "" && !strings.Contains(got, tc.wantErr):
				t.Errorf("reported %q, want an error mentioning %q", got, tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(got, tc.method+" "+tc.path):
				t.Errorf("the report %q does not name the request", got)
			}
		})
	}
}
