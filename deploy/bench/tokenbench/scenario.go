package main

import (
	"bytes"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Scenarios beyond the steady state, on the largest pool with one pod
// (River's sweeps on, SWEEP_INTERVAL and SWEEP_BATCH_SIZE at their defaults)
// under 16 clients of assign -> unblock load:
//
//   - mass expiry: 100,000 leases lapse at the same moment;
//   - mass death: 100,000 free tokens pass alive_until at the same moment.
//
// Each reports the time from that moment until the sweeps have tidied every
// row, and the claim throughput meanwhile against the seconds before.

type scenarioResult struct {
	Name        string  `json:"scenario"`
	Rows        int     `json:"rows"`
	SweptS      float64 `json:"swept_s"`    // from the deadline to the last row tidied
	BeforeCPS   float64 `json:"before_cps"` // cycles/s before the deadline
	DuringCPS   float64 `json:"during_cps"` // cycles/s while rows were waiting
	Errors      int64   `json:"errors"`     // failed requests of the load meanwhile
	Doubles     int64   `json:"double_assignments"`
	TimedOut    bool    `json:"timed_out"` // not tidied within the limit
	ErrorSample string  `json:"error_sample,omitempty"`
}

const scenarioRows = 100000

func (s *suite) runScenarios(ps *poolSetup) error {
	if ps.pool < 2*scenarioRows {
		logf("   scenarios skipped: the %s pool is too small for %d rows", poolLabel(ps.pool), scenarioRows)
		return nil
	}
	var runs []string
	for range max(s.cfg.ScenarioRepeat, 1) {
		runs = append(runs, s.cfg.ScenarioNames...)
	}
	for _, name := range runs {
		r, err := s.scenario(ps, name)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", name, err)
		}
		s.scenarios = append(s.scenarios, r)
		logf("   %-12s %d rows: tidied %.1fs after the deadline (timed out: %v); %.0f cycles/s meanwhile vs %.0f before (%.2f); errors %d, double %d",
			r.Name, r.Rows, r.SweptS, r.TimedOut, r.DuringCPS, r.BeforeCPS, r.DuringCPS/max(r.BeforeCPS, 1), r.Errors, r.Doubles)
		if r.ErrorSample != "" {
			logf("   ! %s", r.ErrorSample)
		}
	}
	return nil
}

func (s *suite) scenario(ps *poolSetup, name string) (scenarioResult, error) {
	res := scenarioResult{Name: name, Rows: scenarioRows}
	conn, err := pgx.Connect(s.ctx, ps.dbURL)
	if err != nil {
		return res, err
	}
	defer conn.Close(s.ctx)

	// The rows get a deadline a few seconds ahead, set in one statement.
	const lead = 4 * time.Second
	var deadline time.Time
	switch name {
	case "mass expiry":
		err = conn.QueryRow(s.ctx, `
WITH p AS (
    SELECT id FROM tokens WHERE lease_id IS NULL AND alive_until > now()
    ORDER BY sort_key LIMIT $1
), leased AS (
    UPDATE tokens t SET lease_id = nextval('lease_id_seq'), lease_ttl = interval '1 minute',
           lease_expires_at = clock_timestamp() + $2 * interval '1 millisecond', holder = 'mass-expiry'
    FROM p WHERE t.id = p.id
    RETURNING t.lease_expires_at
), counted AS (
    UPDATE token_counters SET assigned = assigned + (SELECT count(*) FROM leased) WHERE pool_id = 1 AND slot = 0
)
SELECT max(lease_expires_at) FROM leased`, scenarioRows, lead.Milliseconds()).Scan(&deadline)
	case "mass death":
		err = conn.QueryRow(s.ctx, `
WITH p AS (
    SELECT id FROM tokens WHERE lease_id IS NULL AND alive_until > now()
    ORDER BY sort_key LIMIT $1
), doomed AS (
    UPDATE tokens t SET alive_until = clock_timestamp() + $2 * interval '1 millisecond'
    FROM p WHERE t.id = p.id
    RETURNING t.alive_until
)
SELECT max(alive_until) FROM doomed`, scenarioRows, lead.Milliseconds()).Scan(&deadline)
	case deadMixName:
		deadline, err = deadMixSetup(s.ctx, conn, scenarioRows, lead)
	}
	if err != nil {
		return res, err
	}
	waiting := map[string]string{
		"mass expiry": "SELECT count(*) FROM tokens WHERE lease_id IS NOT NULL AND lease_expires_at <= now()",
		"mass death":  "SELECT count(*) FROM tokens WHERE alive_until <= now()",
		deadMixName:   deadMixWaiting,
	}[name]
	claims := func() (int64, time.Time, error) {
		var v int64
		err := conn.QueryRow(s.ctx, "SELECT last_value FROM lease_id_seq").Scan(&v)
		return v, time.Now(), err
	}

	// Load from now until the rows are tidied (or the limit).
	const limit = 30 * time.Second
	var wg sync.WaitGroup
	var load loadResult
	var loadErr error
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		load, loadErr = runLoad(loadConfig{Targets: []string{ps.pods["a"].url}, Clients: 16,
			Duration: time.Until(deadline) + limit, Stop: stop})
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}()

	// Before: from one second in until the deadline.
	time.Sleep(time.Second)
	c0, t0, err := claims()
	if err != nil {
		return res, err
	}
	time.Sleep(time.Until(deadline))
	c1, t1, err := claims()
	if err != nil {
		return res, err
	}
	res.BeforeCPS = float64(c1-c0) / t1.Sub(t0).Seconds()
	// During: poll until nothing waits for the sweep any more.
	var end time.Time
	for {
		time.Sleep(100 * time.Millisecond)
		var n int64
		if err := conn.QueryRow(s.ctx, waiting).Scan(&n); err != nil {
			return res, err
		}
		if n == 0 {
			end = time.Now()
			break
		}
		if time.Since(deadline) > limit-time.Second {
			res.TimedOut = true
			end = time.Now()
			break
		}
	}
	c2, t2, err := claims()
	if err != nil {
		return res, err
	}
	res.SweptS = end.Sub(deadline).Seconds()
	res.DuringCPS = float64(c2-c1) / t2.Sub(t1).Seconds()
	close(stop)
	wg.Wait()
	if loadErr != nil {
		return res, loadErr
	}
	res.Errors, res.Doubles = load.Errors, load.DoubleAssignments
	if len(load.ErrorSamples) > 0 {
		res.ErrorSample = load.ErrorSamples[0]
	}
	return res, nil
}

func (s *suite) scenarioTable(b *bytes.Buffer) {
	if len(s.scenarios) == 0 {
		return
	}
	b.WriteString("\n### Scenarios (largest pool, 16 clients on one pod, River sweeps at their defaults)\n\n")
	b.WriteString("| scenario | rows | tidied after the deadline | target | claims meanwhile / before | target | errors | double assignments |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range s.scenarios {
		ratio := r.DuringCPS / max(r.BeforeCPS, 1)
		swept := fmt.Sprintf("%.1f s", r.SweptS)
		if r.TimedOut {
			swept = fmt.Sprintf("> %.0f s (timed out)", r.SweptS)
		}
		fmt.Fprintf(b, "| %s | %d | %s (%s) | < 10 s | %.2f (%.0f / %.0f cycles/s) (%s) | >= 0.8 | %d | %d |\n",
			r.Name, r.Rows, swept, yesNo(!r.TimedOut && r.SweptS < 10), ratio, r.DuringCPS, r.BeforeCPS, yesNo(ratio >= 0.8), r.Errors, r.Doubles)
	}
}
