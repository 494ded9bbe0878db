package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// call is one API request.
type call struct {
	method string
	path   string // escaped path below the base URL
	query  url.Values
	body   any // JSON-encoded when not nil
	out    any // decoded from a 2xx answer when not nil
	// idempotent calls may be sent again after a connection error, a
	// timeout, a 429 or a 503: repeating them cannot change the outcome.
	idempotent bool
	// extraTimeout lengthens the attempt's timeout (a long-poll's wait).
	extraTimeout time.Duration
	timeout      time.Duration // of one attempt, instead of RequestTimeout
	status       int           // the 2xx status of the answer, set by do
}

// do sends c with retries and failover. Whatever the call, a request that
// could not be sent (the connection was refused) is tried on the next base
// URL: it never reached a server, so repeating it is safe.
func (cl *Client) do(ctx context.Context, c *call) error {
	var body []byte
	if c.body != nil {
		var err error
		if body, err = json.Marshal(c.body); err != nil {
			return fmt.Errorf("tokenlease: encode request: %w", err)
		}
	}
	bo := newBackoff()
	tried := 0 // base URLs tried since the last pause
	var lastErr error
	for attempt := 1; ; attempt++ {
		idx := int(cl.current.Load()) % len(cl.bases)
		err, retryAfter := cl.attempt(ctx, c, idx, body)
		if err == nil {
			return nil
		}
		lastErr = err
		if ctx.Err() != nil {
			return errOrCtx(lastErr, ctx)
		}
		var ae *APIError
		retryable := false
		switch {
		case errors.As(err, &ae):
			switch ae.Status {
			case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
				retryable = c.idempotent
				cl.failover(idx)
			case http.StatusTooManyRequests:
				retryable = c.idempotent
			}
		case isDialError(err):
			retryable = true
			cl.failover(idx)
		default: // sent, but no answer: only an idempotent call may go again
			retryable = c.idempotent
			cl.failover(idx)
		}
		if !retryable || attempt >= cl.maxAttempts {
			return lastErr
		}
		tried++
		if tried < len(cl.bases) && retryAfter == 0 {
			continue // another pod may answer at once
		}
		tried = 0
		wait := bo.NextBackOff()
		if retryAfter > wait {
			wait = retryAfter
		}
		if err := sleep(ctx, wait); err != nil {
			return errOrCtx(lastErr, ctx)
		}
	}
}

// failover moves the preferred base URL past idx, unless another caller
// already did.
func (cl *Client) failover(idx int) {
	cl.current.CompareAndSwap(int64(idx), int64((idx+1)%len(cl.bases)))
}

func newBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval:     50 * time.Millisecond,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         5 * time.Second,
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func errOrCtx(err error, ctx context.Context) error {
	if err == nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w (%w)", ctx.Err(), err)
}

// attempt sends the request once to base URL idx.
func (cl *Client) attempt(ctx context.Context, c *call, idx int, body []byte) (err error, retryAfter time.Duration) {
	timeout := cl.timeout
	if c.timeout > 0 {
		timeout = c.timeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout+c.extraTimeout)
	defer cancel()
	resp, err := cl.send(actx, idx, c.method, c.path, c.query, body, nil)
	if err != nil {
		return err, 0
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%w: read answer: %w", ErrUnavailable, err), 0
	}
	if resp.StatusCode >= 300 {
		ae := decodeError(resp, b)
		return ae, ae.RetryAfter
	}
	c.status = resp.StatusCode
	if c.out != nil {
		if err := json.Unmarshal(b, c.out); err != nil {
			return fmt.Errorf("tokenlease: decode answer of %s %s: %w", c.method, c.path, err), 0
		}
	}
	return nil, 0
}

// send builds and sends one request; a transport error is wrapped in
// ErrUnavailable.
func (cl *Client) send(ctx context.Context, idx int, method, path string, query url.Values, body []byte, header http.Header) (*http.Response, error) {
	u := *cl.bases[idx]
	u.RawPath = u.EscapedPath() + path
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("tokenlease: build request: %w", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", cl.userAgent)
	if cred, err := cl.credential(ctx); err != nil {
		return nil, err
	} else if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		return nil, &netError{err: err}
	}
	return resp, nil
}

func (cl *Client) credential(ctx context.Context) (string, error) {
	if cl.tokenSource != nil {
		tok, err := cl.tokenSource(ctx)
		if err != nil {
			return "", fmt.Errorf("tokenlease: token source: %w", err)
		}
		return tok, nil
	}
	return cl.apiKey, nil
}

// netError is a request that got no answer; it matches ErrUnavailable.
type netError struct{ err error }

func (e *netError) Error() string   { return "tokenlease: unavailable: " + e.err.Error() }
func (e *netError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// isDialError reports whether the request never left: the connection could
// not be opened.
func isDialError(err error) bool {
	var ne *netError
	if !errors.As(err, &ne) {
		return false
	}
	var op *net.OpError
	return errors.As(ne.err, &op) && op.Op == "dial"
}

func decodeError(resp *http.Response, b []byte) *APIError {
	var eb struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &eb) // a body that is not the API's leaves code and message empty
	ae := newAPIError(resp.StatusCode, eb.Error.Code, eb.Error.Message)
	ae.RequestID = resp.Header.Get("X-Request-ID")
	ae.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
	return ae
}

// parseRetryAfter reads delay-seconds or an HTTP date; capped at a minute
// so that a confused server cannot park a client.
func parseRetryAfter(s string) time.Duration {
	if s == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(s); err == nil {
		d = time.Until(t)
	}
	return max(0, min(d, time.Minute))
}
