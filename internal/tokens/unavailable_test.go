package tokens

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

func TestStorageErrorMarksOutagesUnavailable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"connection refused", refused, true},
		{"connection reset, wrapped", fmt.Errorf("read: %w", &net.OpError{Op: "read", Err: syscall.ECONNRESET}), true},
		{"server closed mid-statement", fmt.Errorf("receive: %w", io.ErrUnexpectedEOF), true},
		{"closed pool", puddle.ErrClosedPool, true},
		{"deadline", context.DeadlineExceeded, true},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, false},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"no rows", pgx.ErrNoRows, false},
		{"anything else", errors.New("boom"), false},
	} {
		err := storageError("assign", tc.err)
		if got := errors.Is(err, ErrUnavailable); got != tc.unavailable {
			t.Errorf("%s: errors.Is(ErrUnavailable) = %v, want %v (%v)", tc.name, got, tc.unavailable, err)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: the cause is lost: %v", tc.name, err)
		}
	}
	if err := wrapDomain(ErrPoolFull); err != ErrPoolFull {
		t.Errorf("a domain error is wrapped: %v", err)
	}
}
