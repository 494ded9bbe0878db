// Package longpoll owns assign?wait=: an assign that, when no token is free,
// waits for one to be freed on any pod and then assigns it. It learns of
// freed tokens from the change log that internal/events reads and fans out
// (it observes each batch; while the log is held back behind a transaction
// open elsewhere, the doorbell's rings send a waiter to claim as a probe),
// and it assigns through the domain
// (internal/tokens). Waiters of one pod queue first come, first served, and a
// batch that frees n tokens wakes n of them, not all.
package longpoll
