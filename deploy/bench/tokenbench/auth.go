package main

import "github.com/tokenlease/tokenlease/internal/auth"

// benchKey is the admin key of the benchmark's pods: each pod gets it as
// BOOTSTRAP_ADMIN_KEY, and every request sends it, so the benchmark
// measures the service with authentication on (pass -pod-env AUTH=off to
// measure without).
var benchKey = auth.NewSecret()

// benchAuthorization is the header every benchmark request sends.
var benchAuthorization = "Bearer " + benchKey
