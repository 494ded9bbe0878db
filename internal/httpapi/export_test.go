package httpapi

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/auth"
)

// RouteRule is a route and what the authorisation table allows there, for
// the black-box tests that walk the table.
type RouteRule struct {
	Method, Path    string
	Listed          bool // the table has an entry (else: admins only)
	Public, Pooled  bool
	ForceByOperator bool
	Allowed         map[auth.Role]bool
}

// RegisteredRules lists every route the handler serves with its rule.
func RegisteredRules(h http.Handler) []RouteRule {
	var out []RouteRule
	for _, ri := range h.(*gin.Engine).Routes() {
		r, ok := ruleFor(ri.Method, ri.Path)
		if !ok {
			r = adminOnly
		}
		rr := RouteRule{Method: ri.Method, Path: ri.Path, Listed: ok, Public: r.public, Pooled: r.pooled,
			ForceByOperator: r.forceByOperator, Allowed: map[auth.Role]bool{}}
		for _, role := range auth.Roles {
			rr.Allowed[role] = r.public || r.roles.Has(role)
		}
		out = append(out, rr)
	}
	return out
}

// IsStream reports whether a route is an event stream.
func IsStream(path string) bool { return strings.HasSuffix(path, "/events") }
