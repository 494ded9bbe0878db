package main

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// The dead mix scenario (issue 9, item 5): scenarioRows tokens take a lease
// and stop being kept alive, both deadlines passing at the same moment, so
// that the pool suddenly holds that many dead, unswept rows with lapsed
// leases among its live ones. Claims must stay index probes meanwhile (the
// free and lapsed indexes skip dead rows on their entries, the lapsed branch
// reads a bounded window) while the sweeps delete the dead rows, dead first.
// Reported like the other scenarios: time until every dead row is gone, and
// claims per second meanwhile against the seconds before (target >= 0.8).
const deadMixName = "dead mix"

// deadMixWaiting counts the rows still waiting for the sweeps.
const deadMixWaiting = "SELECT count(*) FROM tokens WHERE alive_until <= now()"

// deadMixSetup gives rows free tokens a lease and a life that both end lead
// from now, and returns that moment.
func deadMixSetup(ctx context.Context, conn *pgx.Conn, rows int, lead time.Duration) (time.Time, error) {
	var deadline time.Time
	err := conn.QueryRow(ctx, `
WITH p AS (
    SELECT id FROM tokens WHERE lease_id IS NULL AND alive_until > now()
    ORDER BY sort_key LIMIT $1
), doomed AS (
    UPDATE tokens t SET lease_id = nextval('lease_id_seq'), lease_ttl = interval '1 minute',
           lease_expires_at = clock_timestamp() + $2 * interval '1 millisecond',
           alive_until = clock_timestamp() + $2 * interval '1 millisecond', holder = 'dead-mix'
    FROM p WHERE t.id = p.id
    RETURNING t.alive_until
), counted AS (
    UPDATE token_counters SET assigned = assigned + (SELECT count(*) FROM doomed) WHERE pool_id = 1 AND slot = 0
)
SELECT max(alive_until) FROM doomed`, rows, lead.Milliseconds()).Scan(&deadline)
	return deadline, err
}
