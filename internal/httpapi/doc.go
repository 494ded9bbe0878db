// Package httpapi owns the transport: the REST API v1 and the event stream
// (GET /tokens/events, Server-Sent Events fed by internal/events) on Gin. It
// decodes and checks each request, calls the domain (internal/tokens) or the
// long-poll (internal/longpoll), and writes JSON. Every error becomes an HTTP
// status and a stable error code in one table (errors.go); nothing a client
// sends can panic a handler or change data when it is refused. It imports no
// SQL (docs/ARCHITECTURE.md).
package httpapi
