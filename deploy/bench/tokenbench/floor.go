package main

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// The floor of the HTTP layer: a bare net/http server that answers assign and
// unblock with fixed JSON (each assign with a new token name and lease id, so
// that the load generator's double-assignment check stays quiet). Whatever
// the service spends per cycle beyond this server's CPU is the price of
// routing, decoding, the database round trip and encoding.

var floorSeq atomic.Int64

const floorAssignTail = `,"lease_expires_at":"2030-01-01T00:01:00.000000Z","alive_until":"2030-01-01T00:05:00.000000Z"}`

func floorHandler(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	h := w.Header()
	h["Content-Type"] = []string{"application/json; charset=utf-8"}
	switch r.URL.Path {
	case "/tokens/assign":
		n := floorSeq.Add(1)
		var buf [160]byte
		b := append(buf[:0], `{"token":"floor-`...)
		b = strconv.AppendInt(b, n, 10)
		b = append(b, `","lease_id":`...)
		b = strconv.AppendInt(b, n, 10)
		b = append(b, floorAssignTail...)
		_, _ = w.Write(b)
	case "/tokens/unblock":
		_, _ = w.Write([]byte(`{"token":"floor","state":"free"}`))
	case "/healthz", "/readyz":
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":{"code":"route_not_found","message":"no such route"}}`))
	}
}

func serveFloor(ln net.Listener) error {
	srv := &http.Server{Handler: http.HandlerFunc(floorHandler), ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}
