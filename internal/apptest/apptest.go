// Package apptest starts real pods of the service inside a test: each pod is
// built by package app exactly as tokend builds it, serves HTTP on a loopback
// port, and is shut down when the test ends. Tests then speak HTTP to it:
// raw (Do, Call) or through the API's common steps (calls.go), and wait on
// conditions with Eventually. It is the one test kit of black-box tests.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apidoc/apidoctest"
	"github.com/tokenlease/tokenlease/internal/app"
	"github.com/tokenlease/tokenlease/internal/config"
	"github.com/tokenlease/tokenlease/internal/testdb"
)

// Pod is one running instance of the service.
type Pod struct {
	URL    string
	App    *app.App
	Client *http.Client // sends AdminKey unless the request has credentials of its own (see auth.go)
	// AdminKey is the bootstrap admin key every test pod starts with.
	AdminKey string
}

// Option adjusts a pod's configuration or options before it starts.
type Option func(*config.Config, *app.Options)

// WithConfig changes the configuration.
func WithConfig(f func(*config.Config)) Option {
	return func(c *config.Config, _ *app.Options) { f(c) }
}

// WithoutSweeper starts the pod without River's sweeps (nor its other jobs).
func WithoutSweeper() Option {
	return func(_ *config.Config, o *app.Options) { o.DisableJobs = true }
}

// WithMetrics serves GET /metrics on a loopback port of its own (the pod's
// App.MetricsURL). The metrics are the process's: pods of one process share
// them, and scrape-time readings come from the pod that started last.
func WithMetrics() Option {
	return func(c *config.Config, _ *app.Options) { c.MetricsAddr = "127.0.0.1:0" }
}

// WithKeysTouchEvery makes the pod write its keys' last_used_at every d
// instead of every minute.
func WithKeysTouchEvery(d time.Duration) Option {
	return func(_ *config.Config, o *app.Options) { o.KeysTouchEvery = d }
}

var podSeq atomic.Int64

// NewPod starts a pod on a fresh database.
func NewPod(t testing.TB, opts ...Option) *Pod {
	t.Helper()
	return NewPodOn(t, testdb.NewURL(t), opts...)
}

// NewPods starts n pods on one fresh database, as a deployment of n replicas.
func NewPods(t testing.TB, n int, opts ...Option) []*Pod {
	t.Helper()
	url := testdb.NewURL(t)
	pods := make([]*Pod, n)
	for i := range pods {
		pods[i] = NewPodOn(t, url, opts...)
	}
	return pods
}

// NewPodOn starts a pod on the given database.
func NewPodOn(t testing.TB, databaseURL string, opts ...Option) *Pod {
	t.Helper()
	cfg := config.Defaults()
	cfg.DatabaseURL = databaseURL
	cfg.PodName = fmt.Sprintf("test-pod-%d", podSeq.Add(1))
	cfg.SweepInterval = config.Duration(200 * time.Millisecond)
	cfg.ShutdownGrace = config.Duration(5 * time.Second)
	cfg.AuthMode = "keys"
	cfg.BootstrapAdminKey = AdminKey
	cfg.MetricsAddr = "" // pods of parallel tests would share one port; WithMetrics opts in
	var o app.Options
	for _, opt := range opts {
		opt(&cfg, &o)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("apptest: config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, o)
	if err != nil {
		cancel()
		t.Fatalf("apptest: start pod: %v", err)
	}
	if err := a.Start(ctx); err != nil {
		cancel()
		a.Close(context.Background())
		t.Fatalf("apptest: start pod: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		a.Close(context.Background())
		t.Fatalf("apptest: listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil && err != http.ErrServerClosed {
			t.Errorf("apptest: serve: %v", err)
		}
		a.Close(context.Background())
	})
	return &Pod{
		URL:      "http://" + ln.Addr().String(),
		App:      a,
		AdminKey: cfg.BootstrapAdminKey,
		Client: &http.Client{
			Timeout: 90 * time.Second,
			// Every request carries the admin key unless a test says otherwise,
			// and every answer is checked against the OpenAPI document.
			Transport: &defaultCredential{key: cfg.BootstrapAdminKey,
				next: apidoctest.NewValidatingTransport(t, &http.Transport{MaxIdleConnsPerHost: 128})},
		},
	}
}

// Response is a decoded HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test when it is not JSON.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("response %d is not JSON (%v): %s", r.Status, err, r.Body)
	}
}

// Map decodes the body as a JSON object.
func (r Response) Map(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	return m
}

// ErrorCode returns error.code of an error body, failing when there is none.
func (r Response) ErrorCode(t testing.TB) string {
	t.Helper()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	r.JSON(t, &e)
	if e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("response %d has no error code and message: %s", r.Status, r.Body)
	}
	return e.Error.Code
}

// Do sends a request with a raw body (nil for none) as the pod's admin.
func (p *Pod) Do(t testing.TB, method, path string, body []byte) Response {
	t.Helper()
	return p.DoAs(t, p.AdminKey, method, path, body)
}

// Call sends v as a JSON body (nil for none).
func (p *Pod) Call(t testing.TB, method, path string, v any) Response {
	t.Helper()
	r, err := p.Send(method, path, v)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// Send is Call for any goroutine: it returns errors instead of failing the
// test.
func (p *Pod) Send(method, path string, v any) (Response, error) {
	if v == nil {
		return p.SendRaw(method, path, nil)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return Response{}, err
	}
	return p.SendRaw(method, path, bytes.NewReader(b))
}

// SendRaw sends body as it is (nil for none; a reader whose length net/http
// cannot see goes chunked) and returns errors instead of failing the test.
func (p *Pod) SendRaw(method, path string, body io.Reader) (Response, error) {
	return p.send(nil, method, path, body)
}

// SendRawAs is SendRaw with credential as the bearer token (Anonymous: none).
func (p *Pod) SendRawAs(credential, method, path string, body io.Reader) (Response, error) {
	return p.send(&credential, method, path, body)
}

// send sends a request with credential, or the pod's admin key when nil.
func (p *Pod) send(credential *string, method, path string, body io.Reader) (Response, error) {
	req, err := http.NewRequest(method, p.URL+path, body)
	if err != nil {
		return Response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if credential != nil {
		req = WithCredential(req, *credential)
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	r := Response{Status: resp.StatusCode, Header: resp.Header}
	if r.Body, err = io.ReadAll(resp.Body); err != nil {
		return r, fmt.Errorf("read body: %w", err)
	}
	return r, nil
}

// DoAs is Do with credential as the bearer token (Anonymous: none).
func (p *Pod) DoAs(t testing.TB, credential, method, path string, body []byte) Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := p.SendRawAs(credential, method, path, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// CallAs is Call with credential as the bearer token (Anonymous: none).
func (p *Pod) CallAs(t testing.TB, credential, method, path string, v any) Response {
	t.Helper()
	if v == nil {
		return p.DoAs(t, credential, method, path, nil)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return p.DoAs(t, credential, method, path, b)
}
