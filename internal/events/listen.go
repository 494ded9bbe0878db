package events

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// listenAppName marks the LISTEN connection in pg_stat_activity.
const listenAppName = "tokenlease-listen"

// listener holds the pod's one LISTEN connection, dedicated and outside the
// pool. Each notification rings the reader (reader.Rang). When the connection drops it
// reconnects with capped exponential backoff, and every (re)connection kicks
// the reader too, which catches up from the log: notifications lost while
// the connection was down lose nothing. An idle connection is pinged now and
// then, so that a silently dead one is noticed.
type listener struct {
	connConfig *pgx.ConnConfig
	kick       func() // the reader's Rang
	idlePing   time.Duration
	logger     *slog.Logger

	sessions atomic.Int64 // connections made, for tests and stats
	pings    atomic.Int64 // idle pings answered, for tests and stats
}

func newListener(connConfig *pgx.ConnConfig, kick func(), idlePing time.Duration, logger *slog.Logger) *listener {
	cfg := connConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = listenAppName
	return &listener{connConfig: cfg, kick: kick, idlePing: idlePing, logger: logger}
}

// run listens until ctx ends.
func (l *listener) run(ctx context.Context) {
	bo := newBackoff(50*time.Millisecond, 5*time.Second)
	for {
		err := l.session(ctx, bo.reset)
		if ctx.Err() != nil {
			return
		}
		d := bo.next()
		l.logger.Warn("events: LISTEN connection lost; reconnecting", "error", err, "retry_in", d)
		if !sleep(ctx, d) {
			return
		}
	}
}

// session connects, listens and waits for notifications until the
// connection fails or ctx ends. connected is called once it listens.
func (l *listener) session(ctx context.Context, connected func()) error {
	connectCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(connectCtx, l.connConfig)
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(closeCtx) //nolint:errcheck // the connection is being dropped
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	n := l.sessions.Add(1)
	if n > 1 {
		l.logger.Info("events: LISTEN connection restored", "connections", n)
	}
	connected()
	// Changes made while no connection listened are in the log.
	l.kick()
	for {
		waitCtx, cancel := context.WithTimeout(ctx, l.idlePing)
		_, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case err == nil:
			l.kick()
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := conn.Ping(pingCtx)
			cancel()
			if err != nil {
				return err
			}
			l.pings.Add(1)
		default:
			return err
		}
	}
}
