// Package client is the Go SDK of tokenlease: every call of the API, typed
// errors, retries and failover, self-renewing leases (Acquire) and a
// resumable event stream (Events).
//
// # Errors
//
// A refused request returns an *APIError (HTTP status, stable code,
// message, request id) that matches one sentinel with errors.Is:
// ErrNoFreeToken, ErrNotFound, ErrLeaseMismatch, ... A call that got no
// answer from any base URL matches ErrUnavailable.
//
// # Retries and failover
//
// Calls that are safe to repeat (lookups, stats, lists, keep-alive,
// unblock with a lease id, pool PUT) are retried on connection errors,
// timeouts, 429 and 503, with exponential backoff and jitter, honouring
// Retry-After, up to Options.MaxAttempts. Calls that are not (assign,
// generate, import, delete, unblock without a lease id, key and pool
// deletion) are sent once: a lost answer is reported, never guessed at. A
// request whose connection was refused never left, so every call, safe or
// not, is then tried on the next base URL. With several base URLs a client
// sticks to the one that answered last and moves on after a connection
// error or a 503.
//
// # Leases and their guarantees
//
// Acquire assigns a token and renews its lease (keep-alive with the lease
// id, so that a renewal can never extend someone else's lease) every
// RenewFraction of its TTL (default 1/3). Transient failures are retried,
// on every base URL, while time remains. The lease is declared lost, and
// Done is closed and Context cancelled, when
//
//   - the server refuses a renewal (lease_mismatch, not_found: someone
//     unblocked or deleted the token), at once; or
//   - no renewal succeeded in time, by the client's own clock: the local
//     deadline is the moment the last successful renewal (or the assign)
//     was SENT, plus the TTL, minus SafetyMargin (default max(TTL/10,
//     100ms)).
//
// The server starts a lease or renewal no earlier than the client sent the
// request, and sets its expiry to its own now() + TTL; so the local
// deadline falls at least SafetyMargin before the server-side expiry,
// however long the answer took. Only durations measured on the client's
// monotonic clock are used: the server's timestamps (lease_expires_at) are
// never compared with local wall-clock time, so clock offsets between
// hosts do not matter; only a difference in clock RATE over one TTL could
// eat into the margin (parts per million in practice). The margin is what
// your code has, after Done closes, to stop using the token before another
// holder can get it: choose it larger than your work's stop latency. Within
// that, work done while Done is open is covered by the lease. Downstream
// systems should still check LeaseID (a fencing token, strictly increasing)
// because a process paused for longer than the margin (GC, VM freeze)
// cannot notice anything while it is paused.
//
// The TTL is always sent with the assign (default DefaultLeaseTTL), so the
// client knows the lease's length without asking the server's clock. When
// an assign waited (AcquireOptions.Wait), the moment of the claim is
// uncertain, so Acquire renews once before it returns.
//
// Release ends the renewals, closes Done, and unblocks with the lease id.
// A lost lease is not released by the client: it lapses at the server-side
// expiry, after the margin your code uses to stop.
//
// # Events
//
// Events returns an iterator over the change stream that reconnects with
// Last-Event-ID after disconnects, slow-consumer drops and pod changes, and
// skips events at or before the last one yielded: once the first event has
// arrived nothing is skipped or repeated.
package client
