package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Options configure a Client. The zero value of every field but BaseURLs is
// usable.
type Options struct {
	// BaseURLs of the service's pods or load balancers, e.g.
	// "http://tokenlease:8080". A call goes to the one that answered last;
	// on a connection error or 503 it fails over to the next.
	BaseURLs []string
	// APIKey is sent as "Authorization: Bearer <APIKey>".
	APIKey string
	// TokenSource, when set, is asked for a bearer credential (a JWT) before
	// every request; it wins over APIKey. It should cache its token.
	TokenSource func(ctx context.Context) (string, error)
	// HTTPClient sends the requests; nil means a client without a global
	// timeout (calls are bounded by their context and RequestTimeout).
	HTTPClient *http.Client
	// RequestTimeout bounds one attempt of a call (not a long-poll's wait,
	// which is added to it, nor an event stream). Default 30s.
	RequestTimeout time.Duration
	// MaxAttempts bounds the attempts of a call that is safe to repeat.
	// Default 5; 1 disables retries.
	MaxAttempts int
	// UserAgent of every request; default "tokenlease-go".
	UserAgent string
}

// Client speaks to a tokenlease service. It is safe for concurrent use.
type Client struct {
	bases       []*url.URL
	current     atomic.Int64 // index in bases of the URL to try first
	http        *http.Client
	apiKey      string
	tokenSource func(context.Context) (string, error)
	timeout     time.Duration
	maxAttempts int
	userAgent   string
}

// New returns a Client for the given options.
func New(opts Options) (*Client, error) {
	if len(opts.BaseURLs) == 0 {
		return nil, errors.New("tokenlease: no base URL")
	}
	c := &Client{
		http:        opts.HTTPClient,
		apiKey:      opts.APIKey,
		tokenSource: opts.TokenSource,
		timeout:     opts.RequestTimeout,
		maxAttempts: opts.MaxAttempts,
		userAgent:   opts.UserAgent,
	}
	for _, s := range opts.BaseURLs {
		u, err := url.Parse(strings.TrimRight(s, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("tokenlease: base URL must be http(s)://host[:port][/prefix]: " + s)
		}
		c.bases = append(c.bases, u)
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.timeout <= 0 {
		c.timeout = 30 * time.Second
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = 5
	}
	if c.userAgent == "" {
		c.userAgent = "tokenlease-go"
	}
	return c, nil
}

// tokensPath is the prefix of a pool's token routes: pool "" and "default"
// use the routes of API v1 (/tokens), any other pool /pools/{pool}/tokens.
func tokensPath(pool string) string {
	if pool == "" || pool == "default" {
		return "/tokens"
	}
	return "/pools/" + url.PathEscape(pool) + "/tokens"
}
