// Package auth owns callers' credentials (DESIGN section 8): API keys (only
// their SHA-256 is stored, the secret is shown once), their verification on
// the hot path from a per-pod cache without a database round trip, optional
// JWTs verified against a JWKS, the roles and pools a caller holds, and
// per-caller rate limits. What each role may do on each route is the HTTP
// layer's table (internal/httpapi/authz.go); this package says who a caller
// is, never what a route allows.
package auth
