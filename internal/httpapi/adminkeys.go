package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/auth"
	"github.com/tokenlease/tokenlease/internal/config"
)

// Key admin over HTTP (DESIGN section 8); the authorisation table keeps it
// to admins.
func (h *handlers) adminKeyRoutes(r *gin.Engine) {
	if h.opts.Auth.Keys == nil {
		return
	}
	k := r.Group("/admin/keys")
	k.POST("", h.createKey)
	k.GET("", h.listKeys)
	k.DELETE("/:name", h.revokeKey)
}

type createKeyRequest struct {
	Name      *string         `json:"name"`
	Role      *string         `json:"role"`
	Pools     []string        `json:"pools"`
	ExpiresIn json.RawMessage `json:"expires_in"`
	RateLimit *float64        `json:"rate_limit"`
}

// keyView is a key as the API shows it: never its secret, except Key once
// in the answer to its creation.
type keyView struct {
	Key        string   `json:"key,omitempty"`
	Name       string   `json:"name"`
	Role       string   `json:"role"`
	Pools      []string `json:"pools,omitempty"`
	ExpiresAt  *apiTime `json:"expires_at,omitempty"`
	RateLimit  *float64 `json:"rate_limit,omitempty"`
	CreatedAt  apiTime  `json:"created_at"`
	RevokedAt  *apiTime `json:"revoked_at,omitempty"`
	LastUsedAt *apiTime `json:"last_used_at,omitempty"`
}

func viewOfKey(k auth.KeyInfo) keyView {
	return keyView{
		Name: k.Name, Role: string(k.Role), Pools: k.Pools, ExpiresAt: optTime(k.ExpiresAt),
		RateLimit: k.RateLimit, CreatedAt: apiTime(k.CreatedAt), RevokedAt: optTime(k.RevokedAt),
		LastUsedAt: optTime(k.LastUsedAt),
	}
}

func (h *handlers) createKey(c *gin.Context) {
	var req createKeyRequest
	if err := decodeJSON(c, maxBody, false, &req); err != nil {
		writeError(c, err)
		return
	}
	if req.Name == nil || req.Role == nil {
		writeError(c, badRequest("name and role are required"))
		return
	}
	nk := auth.NewKey{Name: *req.Name, Role: auth.Role(*req.Role), Pools: req.Pools}
	if len(req.ExpiresIn) > 0 && string(req.ExpiresIn) != "null" {
		d, err := parseDurationJSON(req.ExpiresIn)
		if err != nil || d <= 0 {
			writeError(c, badRequest("expires_in must be a positive duration (\"720h\", or seconds)"))
			return
		}
		nk.ExpiresIn = d
	}
	if req.RateLimit != nil {
		if *req.RateLimit <= 0 {
			writeError(c, badRequest("rate_limit must be a positive number of requests per second"))
			return
		}
		nk.RateLimit = *req.RateLimit
	}
	secret, info, err := h.opts.Auth.Keys.Create(c.Request.Context(), nk)
	if err != nil {
		writeError(c, err)
		return
	}
	h.keysChanged(c)
	v := viewOfKey(info)
	v.Key = secret
	c.Header("Cache-Control", "no-store")
	writeJSON(c, http.StatusCreated, v)
}

// parseDurationJSON reads a duration as the API writes them: a string in Go
// syntax or of seconds, or a JSON number of seconds.
func parseDurationJSON(b json.RawMessage) (time.Duration, error) {
	var s string
	if json.Unmarshal(b, &s) == nil {
		return config.ParseDuration(s)
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return 0, err
	}
	return config.DurationFromSeconds(secs)
}

func (h *handlers) listKeys(c *gin.Context) {
	keys, err := h.opts.Auth.Keys.List(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	out := make([]keyView, 0, len(keys))
	for _, k := range keys {
		out = append(out, viewOfKey(k))
	}
	writeJSON(c, http.StatusOK, gin.H{"keys": out})
}

func (h *handlers) revokeKey(c *gin.Context) {
	info, err := h.opts.Auth.Keys.Revoke(c.Request.Context(), c.Param("name"))
	if err != nil {
		writeError(c, err)
		return
	}
	h.keysChanged(c)
	writeJSON(c, http.StatusOK, struct {
		keyView
		Revoked bool `json:"revoked"`
	}{viewOfKey(info), true})
}

func (h *handlers) keysChanged(c *gin.Context) {
	if h.opts.Auth.KeysChanged != nil {
		h.opts.Auth.KeysChanged(c.Request.Context())
	}
}
