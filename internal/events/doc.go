// Package events owns the service's change stream and everything built on it:
//
//   - reading the change log (the token_events table, written in the same
//     statement as every state change) gap-free and in commit-safe order
//     (log.go, reader.go);
//   - the LISTEN/NOTIFY doorbell that tells every pod to look at the log: a
//     coalesced NOTIFY after commits (bell.go) and one dedicated LISTEN
//     connection per pod that reconnects with backoff (listen.go), with a
//     slow poll of the log as a safety net;
//   - the in-process fan-out of events to subscribers, which never blocks the
//     reader and drops slow subscribers (hub.go);
//   - GET /tokens/events, Server-Sent Events with resume by Last-Event-ID
//     (sse.go);
//   - assign?wait=, the long-poll that waits for a token to be freed on any
//     pod (waiter.go, waitqueue.go).
//
// Bus (bus.go) assembles these for one pod. NOTIFY is never sent from the hot
// transaction: the change log is the truth and the doorbell only says "look".
// docs/EVENTS.md describes the design for operators and clients.
package events
