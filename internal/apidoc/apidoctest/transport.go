// Package apidoctest checks, in tests, that the service answers as its
// OpenAPI document says: a RoundTripper validates every response a test
// receives (status, content type, body) and, when the answer is a success,
// the request too. Tests send invalid requests on purpose, so a refused
// request need not match the document; an accepted one must.
package apidoctest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/tokenlease/tokenlease/internal/apidoc"
)

var (
	loadOnce sync.Once
	loaded   routes
	loadErr  error
)

// routes finds a request's operation. OpenAPI prefers a literal path
// (/tokens/stats) to a template (/tokens/{token}) whatever the method; the
// server, like gin, routes DELETE /tokens/stats to DELETE /tokens/{token}.
// templated holds only the templated paths, for that second look.
type routes struct {
	all, templated routers.Router
}

// load parses and validates the document once per test binary.
func load() (routes, error) {
	loadOnce.Do(func() {
		loaded.all, loadErr = newRouter(func(string) bool { return true })
		if loadErr == nil {
			loaded.templated, loadErr = newRouter(func(p string) bool { return strings.Contains(p, "{") })
		}
	})
	return loaded, loadErr
}

func newRouter(keep func(path string) bool) (routers.Router, error) {
	doc, err := openapi3.NewLoader().LoadFromData(apidoc.JSON())
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	for p := range doc.Paths.Map() {
		if !keep(p) {
			doc.Paths.Delete(p)
		}
	}
	return gorillamux.NewRouter(doc)
}

// find returns the operation that serves req.
func (r routes) find(req *http.Request) (*routers.Route, map[string]string, error) {
	route, params, err := r.all.FindRoute(req)
	if errors.Is(err, routers.ErrMethodNotAllowed) {
		if route, params, err2 := r.templated.FindRoute(req); err2 == nil {
			return route, params, nil
		}
	}
	return route, params, err
}

// NewValidatingTransport wraps base (http.DefaultTransport when nil) so that
// every exchange is checked against the OpenAPI document; a mismatch fails t
// with the method, path, status and the validation error.
func NewValidatingTransport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	t.Helper()
	r, err := load()
	if err != nil {
		t.Fatalf("apidoctest: the OpenAPI document: %v", err)
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{t: t, base: base, routes: r}
}

type transport struct {
	t      testing.TB
	base   http.RoundTripper
	routes routes
}

func (v *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	resp, err := v.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if isEventStream(resp.Header) {
		// A stream's body is read by the test as it arrives: only the status
		// and the content type are checked.
		if err := v.check(req, reqBody, resp, nil); err != nil {
			v.t.Errorf("openapi: %s %s -> %d: %v", req.Method, req.URL.RequestURI(), resp.StatusCode, err)
		}
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return resp, nil // the test sees the same broken body through its own read
	}
	if err := v.check(req, reqBody, resp, body); err != nil {
		v.t.Errorf("openapi: %s %s -> %d: %v\nbody: %.500s", req.Method, req.URL.RequestURI(), resp.StatusCode, err, body)
	}
	return resp, nil
}

// check validates one exchange; body is nil for an event stream.
func (v *transport) check(req *http.Request, reqBody []byte, resp *http.Response, body []byte) error {
	route, params, err := v.routes.find(req)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		return wantGlobalError(resp, body, http.StatusNotFound, "route_not_found")
	case errors.Is(err, routers.ErrMethodNotAllowed):
		return wantGlobalError(resp, body, http.StatusMethodNotAllowed, "method_not_allowed")
	case err != nil:
		return fmt.Errorf("find route: %w", err)
	}
	if resp.StatusCode == http.StatusNotFound && errorCode(body) == "route_not_found" {
		return nil // the server does not serve this documented route (yet)
	}
	ctx := context.Background()
	in := &openapi3filter.RequestValidationInput{
		Request:    withBody(req, reqBody),
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			// The server is the authority on credentials; the document's
			// security is checked by its own tests.
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		},
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			return fmt.Errorf("the server accepted a request the document refuses: %w", err)
		}
		in.Request = withBody(req, reqBody)
	}
	if mt := mediaType(resp.Header); mt != "application/json" {
		// An event stream, or a page and its assets (/docs): the document
		// says which content type answers, not what is in it.
		return checkMediaType(route, resp, mt)
	}
	return openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
}

// checkMediaType checks that the operation documents a body of media type
// mt for this status.
func checkMediaType(route *routers.Route, resp *http.Response, mt string) error {
	r := route.Operation.Responses.Status(resp.StatusCode)
	if r == nil || r.Value == nil {
		return fmt.Errorf("status %d is not documented", resp.StatusCode)
	}
	if r.Value.Content.Get(mt) == nil {
		return fmt.Errorf("status %d does not document a %s body", resp.StatusCode, mt)
	}
	return nil
}

// wantGlobalError checks the answers every path may give: an unknown route
// and a wrong method (documented in the document's description).
func wantGlobalError(resp *http.Response, body []byte, status int, code string) error {
	if resp.StatusCode != status || errorCode(body) != code {
		return fmt.Errorf("the route is not documented, and the answer is not %d %s", status, code)
	}
	return nil
}

func errorCode(body []byte) string {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Message == "" {
		return ""
	}
	return e.Error.Code
}

// withBody returns req with body to validate. The server reads every body as
// JSON whatever its Content-Type (curl -d sends a form type), and so does the
// check.
func withBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(context.Background())
	if body == nil {
		r.Body = http.NoBody
	} else {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

func isEventStream(h http.Header) bool { return mediaType(h) == "text/event-stream" }

func mediaType(h http.Header) string {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt
}
