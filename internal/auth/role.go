package auth

import (
	"fmt"
	"regexp"
	"slices"
)

// Role is what a caller may do; the HTTP layer's table says where.
type Role string

// The roles of DESIGN section 8.
const (
	RoleAdmin    Role = "admin"
	RoleOperator Role = "operator"
	RoleClient   Role = "client"
	RoleReader   Role = "reader"
)

// Roles lists every role, most powerful first.
var Roles = []Role{RoleAdmin, RoleOperator, RoleClient, RoleReader}

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !slices.Contains(Roles, r) {
		return "", fmt.Errorf("%w: role must be admin, operator, client or reader", ErrInvalid)
	}
	return r, nil
}

// ReadsTokenValues reports whether the role may see token values (readers
// see fingerprints only).
func (r Role) ReadsTokenValues() bool { return r != RoleReader }

// Principal is an authenticated caller.
type Principal struct {
	// Name is the actor written to leases and audit rows: the key's name or
	// the JWT's subject; empty for anonymous callers and with AUTH=off.
	Name string
	Role Role
	// Pools limits the caller to these pools; nil means every pool.
	Pools []string
	// RateLimit is the caller's own requests/s; 0: the pod's RATE_LIMIT.
	RateLimit float64
	// Source says how the caller authenticated: "key", "jwt", "anonymous"
	// or "off" (AUTH=off).
	Source string
}

// AllPools reports whether the caller may use every pool.
func (p Principal) AllPools() bool { return p.Pools == nil }

// CoversPool reports whether the caller may use pool.
func (p Principal) CoversPool(pool string) bool {
	return p.Pools == nil || slices.Contains(p.Pools, pool)
}

// poolName is DESIGN section 7's pool name.
var poolName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidatePools checks a key's pool list: nil means every pool; an empty
// list would lock the key out of everything and is refused.
func ValidatePools(pools []string) error {
	if pools == nil {
		return nil
	}
	if len(pools) == 0 {
		return fmt.Errorf("%w: pools must name at least one pool (omit it for every pool)", ErrInvalid)
	}
	for _, p := range pools {
		if !poolName.MatchString(p) {
			return fmt.Errorf("%w: pool %q does not match ^[a-z0-9][a-z0-9_-]{0,62}$", ErrInvalid, p)
		}
	}
	return nil
}
