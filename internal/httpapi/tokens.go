package httpapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/tokens"
)

type generateRequest struct {
	Count *int `json:"count"`
}

type generateResponse struct {
	Tokens []string `json:"tokens"`
}

func (h *handlers) generate(c *gin.Context) {
	var req generateRequest
	if err := decodeJSON(c, maxBody, false, &req); err != nil {
		writeError(c, err)
		return
	}
	if req.Count == nil {
		writeError(c, badRequest("count is required"))
		return
	}
	created, err := h.svc.Generate(c.Request.Context(), poolOf(c), *req.Count)
	if err != nil {
		writeError(c, err)
		return
	}
	writeJSON(c, http.StatusCreated, generateResponse{Tokens: created})
}

type importRequest struct {
	Tokens []string `json:"tokens"`
}

type importResponse struct {
	Imported []string `json:"imported"`
	Existing []string `json:"existing"`
}

func (h *handlers) importTokens(c *gin.Context) {
	var req importRequest
	if err := decodeJSON(c, maxImportBody, false, &req); err != nil {
		writeError(c, err)
		return
	}
	if req.Tokens == nil {
		writeError(c, badRequest("tokens is required"))
		return
	}
	imported, existing, err := h.svc.Import(c.Request.Context(), poolOf(c), req.Tokens)
	if err != nil {
		writeError(c, err)
		return
	}
	writeJSON(c, http.StatusCreated, importResponse{Imported: imported, Existing: existing})
}

// tokenRef is the body of unblock, keep-alive and delete.
type tokenRef struct {
	Token   *string `json:"token"`
	LeaseID *int64  `json:"lease_id"`
}

func decodeRef(c *gin.Context, allowLease bool) (tokenRef, error) {
	b, err := readBody(c, maxBody)
	if err != nil {
		return tokenRef{}, err
	}
	return decodeRefFrom(b, allowLease)
}

// decodeRefFrom decodes a body already read.
func decodeRefFrom(b []byte, allowLease bool) (tokenRef, error) {
	var ref tokenRef
	if err := decodeJSONBytes(b, false, &ref); err != nil {
		return ref, err
	}
	if ref.Token == nil {
		return ref, badRequest("token is required")
	}
	if ref.LeaseID != nil && !allowLease {
		return ref, badRequest("lease_id is not accepted here")
	}
	return ref, nil
}

type unblockResponse struct {
	Token string `json:"token"`
	State string `json:"state"`
}

func (h *handlers) unblock(c *gin.Context) {
	ref, err := decodeUnblockRef(c) // hotpath.go: decodeRef's results, cheaper
	if err == nil {
		err = checkLeaseRule(c, ref.LeaseID != nil)
	}
	if err == nil {
		err = h.svc.Unblock(c.Request.Context(), poolOf(c), *ref.Token, ref.LeaseID)
	}
	if err != nil {
		writeError(c, err)
		return
	}
	writeUnblocked(c, *ref.Token) // hotpath.go: writeJSON's bytes of unblockResponse
}

type tokenView struct {
	Token          string   `json:"token"`
	State          string   `json:"state"`
	AliveUntil     apiTime  `json:"alive_until"`
	CreatedAt      *apiTime `json:"created_at,omitempty"`
	LeaseID        *int64   `json:"lease_id,omitempty"`
	LeaseExpiresAt *apiTime `json:"lease_expires_at,omitempty"`
	Holder         *string  `json:"holder,omitempty"`
}

func viewOf(st tokens.TokenState) tokenView {
	v := tokenView{
		Token:          st.Token,
		State:          "free",
		AliveUntil:     apiTime(st.AliveUntil),
		LeaseID:        st.LeaseID,
		LeaseExpiresAt: optTime(st.LeaseExpiresAt),
		Holder:         st.Holder,
	}
	if st.Assigned {
		v.State = "assigned"
	}
	if !st.CreatedAt.IsZero() {
		v.CreatedAt = optTime(&st.CreatedAt)
	}
	return v
}

func (h *handlers) keepAlive(c *gin.Context) {
	ref, err := decodeRef(c, true)
	var st tokens.TokenState
	if err == nil {
		err = checkLeaseRule(c, ref.LeaseID != nil)
	}
	if err == nil {
		st, err = h.svc.KeepAlive(c.Request.Context(), poolOf(c), *ref.Token, ref.LeaseID)
	}
	if err != nil {
		writeError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, viewOf(st))
}

type deleteResponse struct {
	Token   string `json:"token"`
	Deleted bool   `json:"deleted"`
}

func (h *handlers) deleteByBody(c *gin.Context) {
	ref, err := decodeRef(c, false)
	if err != nil {
		writeError(c, err)
		return
	}
	h.deleteToken(c, *ref.Token)
}

func (h *handlers) deleteByPath(c *gin.Context) {
	if h.routeWordMethod(c) {
		return
	}
	token, ok := pathToken(c)
	if !ok {
		h.notFound(c)
		return
	}
	h.deleteToken(c, token)
}

// pathToken reads {token} of /tokens/{token} or /pools/{pool}/tokens/{token}
// from the escaped path and unescapes it by path rules: gin unescapes path
// values by query rules, which turn a '+' into a space. A value that cannot
// be a token (too long, control characters, a route word) is not ok: these
// routes answer only not_found (or pool_not_found).
func pathToken(c *gin.Context) (string, bool) {
	p := c.Request.URL.EscapedPath()
	if rest, ok := strings.CutPrefix(p, "/pools/"); ok {
		_, p, _ = strings.Cut(rest, "/") // drop the pool's segment
		p = "/" + p
	}
	token, err := url.PathUnescape(strings.TrimPrefix(p, "/tokens/"))
	if err != nil || tokens.ValidateValue(token) != nil {
		return "", false
	}
	return token, true
}

// notFound answers a path that can name no token: pool_not_found when the
// pool does not exist, not_found otherwise.
func (h *handlers) notFound(c *gin.Context) {
	if err := h.svc.CheckPool(c.Request.Context(), poolOf(c)); err != nil {
		writeError(c, err)
		return
	}
	writeError(c, tokens.ErrNotFound)
}

func (h *handlers) deleteToken(c *gin.Context, token string) {
	if err := h.svc.Delete(c.Request.Context(), poolOf(c), token); err != nil {
		writeError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, deleteResponse{Token: token, Deleted: true})
}

func (h *handlers) get(c *gin.Context) {
	if h.routeWordMethod(c) {
		return
	}
	token, ok := pathToken(c)
	if !ok {
		h.notFound(c)
		return
	}
	st, err := h.svc.Get(c.Request.Context(), poolOf(c), token)
	if err != nil {
		writeError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, lookupViewOf(c, st))
}

type statsResponse struct {
	Free     int64 `json:"free"`
	Assigned int64 `json:"assigned"`
	Total    int64 `json:"total"`
}

func (h *handlers) stats(c *gin.Context) {
	st, err := h.svc.Stats(c.Request.Context(), poolOf(c))
	if err != nil {
		writeError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, statsResponse{Free: st.Free, Assigned: st.Assigned, Total: st.Total})
}
