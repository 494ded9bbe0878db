package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/tokens"
)

// registerPools adds the pool routes of DESIGN.md section 7.
func registerPools(r *gin.Engine, h *handlers) {
	r.GET("/pools", h.listPools)
	r.PUT("/pools/:pool", h.putPool)
	r.GET("/pools/:pool", h.getPool)
	r.DELETE("/pools/:pool", h.deletePool)
}

// poolView is a pool as the API shows it: its effective settings (its own,
// or the environment's where it has none) and its counts.
type poolView struct {
	Name         string `json:"name"`
	LeaseTTL     string `json:"lease_ttl"`
	KeepaliveTTL string `json:"keepalive_ttl"`
	MaxLeaseTTL  string `json:"max_lease_ttl"`
	MaxTokens    int64  `json:"max_tokens"`
	Free         int64  `json:"free"`
	Assigned     int64  `json:"assigned"`
	Total        int64  `json:"total"`
}

func poolViewOf(p tokens.PoolInfo) poolView {
	return poolView{
		Name: p.Name, LeaseTTL: p.LeaseTTL.String(), KeepaliveTTL: p.KeepaliveTTL.String(),
		MaxLeaseTTL: p.MaxLeaseTTL.String(), MaxTokens: p.MaxTokens,
		Free: p.Free, Assigned: p.Assigned, Total: p.Total,
	}
}

// putPoolRequest is the body of PUT /pools/{pool}: every field optional, an
// absent or null one falls back to the environment's value.
type putPoolRequest struct {
	LeaseTTL     json.RawMessage `json:"lease_ttl"`
	KeepaliveTTL json.RawMessage `json:"keepalive_ttl"`
	MaxLeaseTTL  json.RawMessage `json:"max_lease_ttl"`
	MaxTokens    *int64          `json:"max_tokens"`
}

func (h *handlers) putPool(c *gin.Context) {
	name := c.Param("pool")
	if err := tokens.ValidatePoolName(name); err != nil {
		writeError(c, err)
		return
	}
	var req putPoolRequest
	if err := decodeJSON(c, maxBody, true, &req); err != nil {
		writeError(c, err)
		return
	}
	ps := tokens.PoolSettings{MaxTokens: req.MaxTokens}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  **time.Duration
	}{
		{"lease_ttl", req.LeaseTTL, &ps.LeaseTTL},
		{"keepalive_ttl", req.KeepaliveTTL, &ps.KeepaliveTTL},
		{"max_lease_ttl", req.MaxLeaseTTL, &ps.MaxLeaseTTL},
	} {
		d, err := optionalDuration(f.name, f.raw)
		if err != nil {
			writeError(c, err)
			return
		}
		*f.dst = d
	}
	info, created, err := h.svc.PutPool(c.Request.Context(), name, ps)
	if err != nil {
		writeError(c, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(c, status, poolViewOf(info))
}

// optionalDuration reads a duration field as durationField does; absent or
// null is nil.
func optionalDuration(name string, raw json.RawMessage) (*time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var f durationField
	if err := f.UnmarshalJSON(raw); err != nil {
		return nil, badRequest("%s: must be a duration such as \"90s\" or a number of seconds", name)
	}
	return &f.d, nil
}

func (h *handlers) getPool(c *gin.Context) {
	info, err := h.svc.Pool(c.Request.Context(), c.Param("pool"))
	if err != nil {
		writeError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, poolViewOf(info))
}

type poolsResponse struct {
	Pools []poolView `json:"pools"`
}

func (h *handlers) listPools(c *gin.Context) {
	all, err := h.svc.Pools(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	out := poolsResponse{Pools: make([]poolView, len(all))}
	for i, p := range all {
		out.Pools[i] = poolViewOf(p)
	}
	writeJSON(c, http.StatusOK, out)
}

type deletePoolResponse struct {
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
}

func (h *handlers) deletePool(c *gin.Context) {
	name := c.Param("pool")
	if err := h.svc.DeletePool(c.Request.Context(), name); err != nil {
		writeError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, deletePoolResponse{Name: name, Deleted: true})
}
