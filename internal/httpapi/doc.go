// Package httpapi owns the REST API v1 on Gin: it decodes and checks each
// request, calls the domain service, and writes JSON. Domain errors become an
// HTTP status and a stable error code in one table (errors.go); nothing a
// client sends can panic a handler or change data when it is refused.
package httpapi
