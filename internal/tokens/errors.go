package tokens

import (
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

// Sentinel errors of the domain. Callers test them with errors.Is; the HTTP
// layer maps each to a status and a stable code in one table.
var (
	// ErrInvalidRequest wraps every validation failure; the wrapping message
	// says what was wrong.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrNotFound: the token is unknown, deleted, or dead.
	ErrNotFound = errors.New("token not found")
	// ErrNoFreeToken: every live token holds a live lease.
	ErrNoFreeToken = errors.New("no free token")
	// ErrNotAssigned: unblock of a token that holds no live lease.
	ErrNotAssigned = errors.New("token is not assigned")
	// ErrLeaseMismatch: the lease id presented is not the token's live lease.
	ErrLeaseMismatch = errors.New("lease id does not match the current lease")
	// ErrPoolFull: the change would take the pool past MAX_TOKENS.
	ErrPoolFull = errors.New("token pool is full")
	// ErrUnavailable: the service is shutting down or cannot serve now,
	// among others because the database does not answer (Unavailable).
	ErrUnavailable = errors.New("service unavailable")
	// ErrPoolNotFound: no live pool has that name.
	ErrPoolNotFound = errors.New("pool not found")
	// ErrPoolNotEmpty: deleting a pool that still holds live tokens.
	ErrPoolNotEmpty = errors.New("pool still holds live tokens")
	// ErrPoolProtected: deleting pool default.
	ErrPoolProtected = errors.New("pool is protected")
	// ErrForbidden: the caller may not act on this lease (another caller's).
	ErrForbidden = errors.New("forbidden")
)

// domainErrors are the sentinels that pass through wrapDomain unchanged.
var domainErrors = []error{
	ErrInvalidRequest, ErrNotFound, ErrNoFreeToken, ErrNotAssigned,
	ErrLeaseMismatch, ErrPoolFull, ErrUnavailable,
	ErrPoolNotFound, ErrPoolNotEmpty, ErrPoolProtected, ErrForbidden,
}

// wrapDomain keeps a domain error as it is and marks anything else as a
// storage failure (storageError).
func wrapDomain(err error) error {
	for _, d := range domainErrors {
		if errors.Is(err, d) {
			return err
		}
	}
	return storageError("", err)
}

// storageError wraps a failure of the database under what the service was
// doing. A failure that says the database cannot be reached now also wraps
// ErrUnavailable, so that an outage answers 503, never 500.
func storageError(what string, err error) error {
	prefix := "tokens"
	if what != "" {
		prefix += ": " + what
	}
	if Unavailable(err) {
		return fmt.Errorf("%s: %w: %w", prefix, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// Unavailable reports whether err says that the database cannot serve now
// (down, restarting, unreachable, or the connection broke) rather than that
// the statement itself failed. Such a failure passes when the database is
// back; every other one is a bug or a refusal worth a 500.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return unavailableSQLState(pgErr.Code)
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true // the server closed the connection mid-statement
	case errors.Is(err, puddle.ErrClosedPool):
		return true // the pod is closing its pool: shutting down
	case pgconn.SafeToRetry(err):
		// pgconn guarantees nothing was sent: a connection that was already
		// closed or broken when the statement came.
		return true
	}
	return false
}

// unavailableSQLState reports whether a server error means the server cannot
// serve now: connection exceptions (class 08), operator intervention that
// ends sessions (admin or crash shutdown, cannot connect now, database
// dropped) and too many connections.
func unavailableSQLState(code string) bool {
	switch {
	case len(code) == 5 && code[:2] == "08":
		return true
	}
	switch code {
	case "57P01", // admin_shutdown
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now (starting up, shutting down, recovery)
		"57P05", // idle_session_timeout
		"53300", // too_many_connections
		"53400": // configuration_limit_exceeded
		return true
	}
	return false
}
