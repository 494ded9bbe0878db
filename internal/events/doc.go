// Package events owns the service's change stream, and nothing built on it:
//
//   - reading the change log (the token_events table, written in the same
//     statement as every state change) gap-free and in commit-safe order
//     (log.go, reader.go), through its own generated queries, db/eventsdb;
//   - the LISTEN/NOTIFY doorbell that tells every pod to look at the log: a
//     coalesced NOTIFY after commits (bell.go) and one dedicated LISTEN
//     connection per pod that reconnects with backoff (listen.go), with a
//     slow poll of the log as a safety net;
//   - the in-process fan-out of events to subscribers and observers, which
//     never blocks the reader and drops slow subscribers (hub.go).
//
// Bus (bus.go) assembles these for one pod. Its consumers live elsewhere:
// GET /tokens/events in internal/httpapi, assign?wait= in internal/longpoll.
// It knows no HTTP and no domain (docs/ARCHITECTURE.md): the domain tells it
// that something committed through tokens.ChangeNotifier, which Bus
// implements. NOTIFY is never sent from the hot transaction: the change log
// is the truth and the doorbell only says "look". docs/EVENTS.md describes
// the design for operators and clients.
package events
