package httpapi

import (
	"fmt"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/auth"
)

// Who may call what: the one table of DESIGN section 8. The middleware in
// authn.go looks every request's route up here; a route without an entry is
// for admins only (fail closed), and a test walks every registered route x
// every role x own pool / other pool against this table.

// roleSet is a set of roles.
type roleSet uint8

const (
	rAdmin roleSet = 1 << iota
	rOperator
	rClient
	rReader
)

func roleBit(r auth.Role) roleSet {
	switch r {
	case auth.RoleAdmin:
		return rAdmin
	case auth.RoleOperator:
		return rOperator
	case auth.RoleClient:
		return rClient
	case auth.RoleReader:
		return rReader
	}
	return 0
}

// Has reports whether the set holds role r.
func (s roleSet) Has(r auth.Role) bool { return s&roleBit(r) != 0 }

// rule is what one route allows.
type rule struct {
	public bool    // no credential needed
	roles  roleSet // who may call it
	// pooled routes act on pools: the Gin param pool, else pool default
	// (and for the event streams, the query's pool values); a caller limited
	// to other pools gets 403.
	pooled bool
	// forceByOperator: an operator may call it only without a lease_id (a
	// force release or a provider's keep-alive); a client only on its own
	// leases (the domain checks ownership).
	forceByOperator bool
	// seed routes are the seeds' routes (DESIGN section 10):
	// SEED_ROUTES_ANONYMOUS lets anonymous callers use them as client and
	// operator of pool default.
	seed bool
	// events: a stream; readers get token_fp instead of values and a
	// shallow resume only.
	events bool
}

type routeKey struct{ method, path string }

const (
	all      = rAdmin | rOperator | rClient | rReader
	adminOp  = rAdmin | rOperator
	lookups  = rAdmin | rOperator | rClient | rReader
	streams  = rAdmin | rOperator | rReader
	leaseOps = rAdmin | rOperator | rClient
)

// tokenRules are the routes of section 2 under /tokens; each exists also
// under /pools/{pool}/tokens (section 7) with the same rule.
var tokenRules = map[routeKey]rule{
	{"POST", "/generate"}:   {roles: adminOp, pooled: true},
	{"POST", "/import"}:     {roles: adminOp, pooled: true},
	{"POST", "/assign"}:     {roles: rAdmin | rClient, pooled: true},
	{"GET", "/assign"}:      {roles: rAdmin | rClient, pooled: true},
	{"POST", "/unblock"}:    {roles: leaseOps, pooled: true, forceByOperator: true},
	{"POST", "/keep-alive"}: {roles: leaseOps, pooled: true, forceByOperator: true},
	{"PUT", "/keep-alive"}:  {roles: leaseOps, pooled: true, forceByOperator: true},
	{"DELETE", "/delete"}:   {roles: adminOp, pooled: true},
	{"DELETE", "/:token"}:   {roles: adminOp, pooled: true},
	{"GET", "/:token"}:      {roles: lookups, pooled: true},
	{"GET", "/stats"}:       {roles: all, pooled: true},
	{"GET", "/events"}:      {roles: streams, pooled: true, events: true},
}

// otherRules are the routes outside /tokens.
var otherRules = map[routeKey]rule{
	{"GET", "/healthz"}:      {public: true},
	{"GET", "/readyz"}:       {public: true},
	{"GET", "/openapi.json"}: {public: true},
	{"GET", "/docs"}:         {public: true},
	{"GET", "/docs/*asset"}:  {public: true},

	{"POST", "/admin/keys"}:         {roles: rAdmin},
	{"GET", "/admin/keys"}:          {roles: rAdmin},
	{"DELETE", "/admin/keys/:name"}: {roles: rAdmin},

	// River UI (its page, assets and JSON API) shows the job queue.
	{"GET", "/admin/river"}:       {roles: rAdmin},
	{"GET", "/admin/river/*path"}: {roles: rAdmin},

	// Pools (section 7): reading one pool is like its stats; changing
	// pools and listing them all is for admins.
	{"GET", "/pools"}:          {roles: rAdmin},
	{"PUT", "/pools/:pool"}:    {roles: rAdmin},
	{"DELETE", "/pools/:pool"}: {roles: rAdmin},
	{"GET", "/pools/:pool"}:    {roles: all, pooled: true},
	{"GET", "/events"}:         {roles: streams, pooled: true, events: true},

	// The seeds' routes (section 10) act on pool default with the rights
	// of the routes they stand for.
	{"POST", "/token/generate"}:             {roles: adminOp, pooled: true, seed: true},
	{"POST", "/token/generateToken"}:        {roles: adminOp, pooled: true, seed: true},
	{"GET", "/token/assign"}:                {roles: rAdmin | rClient, pooled: true, seed: true},
	{"GET", "/token/acquireToken"}:          {roles: rAdmin | rClient, pooled: true, seed: true},
	{"POST", "/token/unblock"}:              {roles: leaseOps, pooled: true, seed: true, forceByOperator: true},
	{"PUT", "/token/unblock"}:               {roles: leaseOps, pooled: true, seed: true, forceByOperator: true},
	{"PUT", "/token/unblockToken"}:          {roles: leaseOps, pooled: true, seed: true, forceByOperator: true},
	{"PUT", "/token/keep-alive"}:            {roles: leaseOps, pooled: true, seed: true, forceByOperator: true},
	{"PUT", "/token/keepAlive"}:             {roles: leaseOps, pooled: true, seed: true, forceByOperator: true},
	{"DELETE", "/token/delete"}:             {roles: adminOp, pooled: true, seed: true},
	{"DELETE", "/token/deleteToken"}:        {roles: adminOp, pooled: true, seed: true},
	{"DELETE", "/token/deleteExpiredToken"}: {roles: adminOp, pooled: true, seed: true},
}

// authzTable is every rule by method and Gin route template.
var authzTable = func() map[routeKey]rule {
	t := make(map[routeKey]rule, 2*len(tokenRules)+len(otherRules))
	for k, r := range tokenRules {
		t[routeKey{k.method, "/tokens" + k.path}] = r
		t[routeKey{k.method, "/pools/:pool/tokens" + k.path}] = r
	}
	for k, r := range otherRules {
		t[k] = r
	}
	return t
}()

// adminOnly is the rule of a route the table does not list.
var adminOnly = rule{roles: rAdmin}

func ruleFor(method, route string) (rule, bool) {
	r, ok := authzTable[routeKey{method, route}]
	return r, ok
}

// defaultPool is the pool of every route without a {pool} (section 7).
const defaultPool = "default"

// readerResumeWindow is how far back a caller that may not read token
// values may resume an event stream (docs/SECURITY.md).
const readerResumeWindow = 5 * time.Minute

// seedAnonymous is an anonymous caller of a seed route with
// SEED_ROUTES_ANONYMOUS=true: it acts as operator where operators may,
// else as client, in pool default only.
func seedAnonymous(r rule) auth.Principal {
	role := auth.RoleClient
	if r.roles.Has(auth.RoleOperator) {
		role = auth.RoleOperator
	}
	return auth.Principal{Role: role, Pools: []string{defaultPool}, Source: "anonymous"}
}

// authorize checks p against the route's rule and pools.
func authorize(c *gin.Context, r rule, p auth.Principal) error {
	if !r.roles.Has(p.Role) {
		return fmt.Errorf("%w: role %s may not %s %s", auth.ErrForbidden, p.Role, c.Request.Method, c.FullPath())
	}
	if !r.pooled || p.AllPools() {
		return nil
	}
	for _, pool := range requestPools(c, r) {
		if !p.CoversPool(pool) {
			return fmt.Errorf("%w: this credential may not use pool %q", auth.ErrForbidden, pool)
		}
	}
	return nil
}

// requestPools are the pools a request acts on. GET /events without
// ?pool= names none: it streams only the pools the caller covers (see
// queryPools), so it needs no check here.
func requestPools(c *gin.Context, r rule) []string {
	if pool := c.Param("pool"); pool != "" {
		return []string{pool}
	}
	if r.events && c.FullPath() == "/events" {
		return namedPools(c)
	}
	return []string{defaultPool}
}

// namedPools are the pools GET /events names: ?pool=a&pool=b or ?pool=a,b.
func namedPools(c *gin.Context) []string {
	var named []string
	for _, v := range c.QueryArray("pool") {
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				named = append(named, s)
			}
		}
	}
	return named
}

// checkLeaseRule enforces forceByOperator once the body is read: an
// operator may not present a lease_id (that would act as a lease's holder).
func checkLeaseRule(c *gin.Context, hasLeaseID bool) error {
	if !hasLeaseID {
		return nil
	}
	r, ok := ruleFor(c.Request.Method, c.FullPath())
	if ok && r.forceByOperator && principalOf(c).Role == auth.RoleOperator {
		return fmt.Errorf("%w: an operator may release or keep alive a token only without lease_id", auth.ErrForbidden)
	}
	return nil
}
