package httpapi

import (
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/config"
	"github.com/tokenlease/tokenlease/internal/tokens"
)

// maxWait bounds ?wait= on assign.
const maxWait = 60 * time.Second

type assignRequest struct {
	Holder *string       `json:"holder"`
	TTL    durationField `json:"ttl"`
}

type assignResponse struct {
	Token          string  `json:"token"`
	LeaseID        int64   `json:"lease_id"`
	LeaseExpiresAt apiTime `json:"lease_expires_at"`
	AliveUntil     apiTime `json:"alive_until"`
	Holder         *string `json:"holder,omitempty"`
}

// parseAssign reads holder and ttl from the query and from an optional JSON
// body; a field given in the body wins over the same query parameter.
func parseAssign(c *gin.Context) (tokens.AssignRequest, time.Duration, error) {
	req := tokens.AssignRequest{Pool: poolOf(c)}
	if h, ok := c.GetQuery("holder"); ok {
		if h == "" {
			return req, 0, badRequest("holder must not be empty")
		}
		req.Holder = h
	}
	if s, ok := c.GetQuery("ttl"); ok {
		d, err := config.ParseDuration(s)
		if err != nil {
			return req, 0, badRequest("ttl: %v", err)
		}
		if d == 0 {
			return req, 0, badRequest("ttl must be positive")
		}
		req.TTL = d
	}
	var wait time.Duration
	if s, ok := c.GetQuery("wait"); ok {
		d, err := config.ParseDuration(s)
		if err != nil {
			return req, 0, badRequest("wait: %v", err)
		}
		if d < 0 || d > maxWait {
			return req, 0, badRequest("wait must lie between 0s and %s", maxWait)
		}
		wait = d
	}
	var body assignRequest
	if err := decodeJSON(c, maxBody, true, &body); err != nil {
		return req, 0, err
	}
	if body.Holder != nil {
		if *body.Holder == "" {
			return req, 0, badRequest("holder must not be empty")
		}
		req.Holder = *body.Holder
	}
	if body.TTL.set {
		if body.TTL.d == 0 {
			return req, 0, badRequest("ttl must be positive")
		}
		req.TTL = body.TTL.d
	}
	return req, wait, nil
}

func (h *handlers) assign(c *gin.Context) {
	req, wait, err := parseAssign(c)
	if err != nil {
		writeError(c, err)
		return
	}
	lease, err := h.assignLease(c, req, wait)
	if err != nil {
		writeError(c, err)
		return
	}
	writeAssigned(c, lease) // hotpath.go: writeJSON's bytes of assignResponse
}

// assignLease assigns a token through the Waiter when there is one, with or
// without a wait: it also releases at once a lease taken for a client that
// hung up meanwhile, instead of leaving it held until its TTL.
func (h *handlers) assignLease(c *gin.Context, req tokens.AssignRequest, wait time.Duration) (tokens.Lease, error) {
	if h.opts.Waiter != nil {
		return h.opts.Waiter.AssignWait(c.Request.Context(), req, wait)
	}
	return h.svc.Assign(c.Request.Context(), req)
}
