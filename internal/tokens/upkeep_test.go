package tokens_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/testdb"
	"github.com/tokenlease/tokenlease/internal/tokens"
)

// Audit partition upkeep never stalls the hot path (issue 9, item 2). An
// auditor's transaction keeps token_events open while the upkeep has a
// partition to drop and one to create: assigns keep being answered, each
// within a second, and the upkeep reports that it will retry. Once the reader
// has committed, the upkeep completes; aged rows of the default partition
// fall under retention too (their deletion needs no lock the reader holds).
func TestPartitionUpkeepNeverStallsAssigns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.NewURL(t)
	pod := apptest.NewPodOn(t, url, apptest.WithoutSweeper())
	svc := pod.App.Service
	if _, err := svc.Generate(ctx, "", 50); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var ahead string // the partition a week ahead, removed so that the upkeep must create it
	if err := admin.QueryRow(ctx, "SELECT 'token_log_' || to_char((now() AT TIME ZONE 'UTC')::date + 7, 'YYYYMMDD')").Scan(&ahead); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"DROP TABLE IF EXISTS " + ahead,
		`CREATE TABLE token_log_20200101 PARTITION OF token_log
		 FOR VALUES FROM ('2020-01-01 00:00+00') TO ('2020-01-02 00:00+00')`,
		`INSERT INTO token_events (pool_id, at, kind, token_id, token, pod) VALUES
		 (1, '2020-01-01 12:00+00', 'assigned', 0, 'old-a', 'old'), (1, '2019-06-01 12:00+00', 'assigned', 0, 'old-b', 'old')`,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	reader, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close(ctx)
	audit, err := reader.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := audit.QueryRow(ctx, "SELECT count(*) FROM token_events").Scan(&n); err != nil {
		t.Fatal(err)
	}

	load := startAssignLoad(t, pod)
	const retention = 30 * 24 * time.Hour
	for range 3 {
		up, err := svc.MaintainEventPartitions(ctx, 7, retention)
		if !errors.Is(err, tokens.ErrUpkeepBusy) {
			t.Fatalf("upkeep while a reader holds token_events: %+v, %v; want ErrUpkeepBusy", up, err)
		}
	}
	if err := audit.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	up, err := svc.MaintainEventPartitions(ctx, 7, retention)
	if err != nil {
		t.Fatalf("upkeep after the reader committed: %v", err)
	}
	slowest, answered, failures := load.stop()
	t.Logf("upkeep: %+v; %d assign/unblock answered meanwhile, slowest %s", up, answered, slowest)
	for _, f := range failures {
		t.Error(f)
	}
	if slowest > time.Second {
		t.Errorf("a request took %s while the upkeep ran", slowest)
	}
	if answered < 10 {
		t.Errorf("only %d requests answered while the upkeep ran", answered)
	}
	var dropped, created bool
	var aged int
	if err := admin.QueryRow(ctx, `
SELECT to_regclass('token_log_20200101') IS NULL, to_regclass($1) IS NOT NULL,
       (SELECT count(*) FROM token_events WHERE at < '2021-01-01')`, ahead).Scan(&dropped, &created, &aged); err != nil {
		t.Fatal(err)
	}
	if !dropped || !created || aged != 0 || up.Dropped != 1 || up.Created != 1 {
		t.Errorf("after the upkeep: aged partition dropped %v, %s created %v, %d aged rows left; reported %+v",
			dropped, ahead, created, aged, up)
	}
}

type assignLoad struct {
	done     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	slowest  time.Duration
	answered int
	failures []string
}

// startAssignLoad runs assign -> unblock cycles against pod from 4 clients
// until stop.
func startAssignLoad(t *testing.T, pod *apptest.Pod) *assignLoad {
	t.Helper()
	l := &assignLoad{done: make(chan struct{})}
	post := func(path string, body any, out any) error {
		var b []byte // no body for nil: the API document refuses a JSON null
		if body != nil {
			b, _ = json.Marshal(body)
		}
		t0 := time.Now()
		resp, err := pod.Client.Post(pod.URL+path, "application/json", bytes.NewReader(b))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		d := time.Since(t0)
		l.mu.Lock()
		l.answered++
		l.slowest = max(l.slowest, d)
		l.mu.Unlock()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: HTTP %d", path, resp.StatusCode)
		}
		return json.NewDecoder(resp.Body).Decode(out)
	}
	for range 4 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.done:
					return
				default:
				}
				var lease struct {
					Token   string `json:"token"`
					LeaseID int64  `json:"lease_id"`
				}
				err := post("/tokens/assign", nil, &lease)
				if err == nil {
					err = post("/tokens/unblock", map[string]any{"token": lease.Token, "lease_id": lease.LeaseID}, &struct{}{})
				}
				if err != nil {
					l.mu.Lock()
					if len(l.failures) < 10 {
						l.failures = append(l.failures, err.Error())
					}
					l.mu.Unlock()
				}
			}
		}()
	}
	return l
}

func (l *assignLoad) stop() (slowest time.Duration, answered int, failures []string) {
	close(l.done)
	l.wg.Wait()
	return l.slowest, l.answered, l.failures
}
