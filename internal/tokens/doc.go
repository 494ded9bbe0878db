// Package tokens owns the domain of the lease service: what a token and a
// lease are, the rules their values obey, the errors a caller can get, and the
// Service that carries out every state change against PostgreSQL through the
// generated queries in package db. Every change is one SQL statement (or one
// transaction) that also writes its audit row; deadlines are compared with the
// database clock in every query, so no answer depends on a sweep having run.
// It is the only importer of db, and it imports no transport, jobs or events
// package: after a commit it calls a ChangeNotifier (docs/ARCHITECTURE.md).
package tokens
