package main

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
)

// startPprof serves Go's profiler on addr (PPROF_ADDR, validated as a
// loopback address by config) for performance work; empty, nothing listens.
func startPprof(addr string) {
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() {
		if err := http.ListenAndServe(addr, mux); err != nil {
			slog.Error("pprof listener stopped", "error", err)
		}
	}()
}
