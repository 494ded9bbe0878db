package main

import (
	"errors"

	"github.com/tokenlease/tokenlease/client"
)

// Exit codes scripts can rely on.
const (
	exitOK          = 0 // success
	exitUsage       = 1 // bad command line, or a request the server refused as invalid
	exitNotFound    = 2 // no such token, pool or key, or no free token
	exitConflict    = 3 // lease mismatch, not assigned, pool full / not empty / protected, key name taken
	exitAuth        = 4 // missing, wrong or insufficient credentials
	exitUnavailable = 5 // the service did not answer, is unavailable, or rate-limits us
	exitOther       = 6 // anything else
)

var exitTable = []struct {
	err  error
	code int
}{
	{client.ErrInvalidRequest, exitUsage},
	{client.ErrNotFound, exitNotFound},
	{client.ErrNoFreeToken, exitNotFound},
	{client.ErrPoolNotFound, exitNotFound},
	{client.ErrKeyNotFound, exitNotFound},
	{client.ErrKeyExists, exitConflict},
	{client.ErrNotAssigned, exitConflict},
	{client.ErrLeaseMismatch, exitConflict},
	{client.ErrPoolFull, exitConflict},
	{client.ErrPoolNotEmpty, exitConflict},
	{client.ErrPoolProtected, exitConflict},
	{client.ErrUnauthenticated, exitAuth},
	{client.ErrForbidden, exitAuth},
	{client.ErrUnavailable, exitUnavailable},
	{client.ErrRateLimited, exitUnavailable},
}

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	for _, e := range exitTable {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return exitOther
}

// usageError is a bad command line.
type usageError string

func (e usageError) Error() string { return string(e) }
