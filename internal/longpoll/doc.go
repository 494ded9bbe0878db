// Package longpoll owns assign?wait=: an assign that, when no token is free,
// waits for one to be freed on any pod and then assigns it. It learns of
// freed tokens from the change log that internal/events reads and fans out
// (it observes each batch), and it assigns through the domain
// (internal/tokens). Waiters of one pod queue first come, first served, and a
// batch that frees n tokens wakes n of them, not all.
package longpoll
