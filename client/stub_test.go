package client_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// newStubServer serves h: for behaviours the real server cannot be made to
// show on demand (401, 429 with Retry-After, foreign error pages).
func newStubServer(t *testing.T, h http.HandlerFunc) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
