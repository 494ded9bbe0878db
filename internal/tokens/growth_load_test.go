package tokens_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/testdb"
)

// Pool growth never blocks or deadlocks the hot path (issue 9, item 1): the
// same 2,000 values imported again and again, and fresh generates, while 16
// clients assign and unblock on real pods. Every request is answered, none
// with a 5xx, and the database detects no deadlock.
func TestGrowthUnderAssignLoadNeverDeadlocks(t *testing.T) {
	t.Parallel()
	url := testdb.NewURL(t)
	admin, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	before := deadlocks(t, admin)

	var answered, fiveXX, failed atomic.Int64
	var mu sync.Mutex
	var samples []string
	note := func(format string, args ...any) {
		mu.Lock()
		if len(samples) < 10 {
			samples = append(samples, fmt.Sprintf(format, args...))
		}
		mu.Unlock()
	}
	call := func(pod *apptest.Pod, path string, body any, out any) int {
		var b []byte // no body for nil: the API document refuses a JSON null
		if body != nil {
			b, _ = json.Marshal(body)
		}
		resp, err := pod.Client.Post(pod.URL+path, "application/json", bytes.NewReader(b))
		if err != nil {
			failed.Add(1)
			note("%s: %v", path, err)
			return 0
		}
		defer resp.Body.Close()
		answered.Add(1)
		if resp.StatusCode >= 500 {
			fiveXX.Add(1)
			var e map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&e)
			note("%s: HTTP %d %v", path, resp.StatusCode, e)
			return resp.StatusCode
		}
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}

	values := make([]string, 2000)
	for i := range values {
		values[i] = fmt.Sprintf("licence-%05d", i)
	}
	var imports, generates, cycles atomic.Int64
	t.Run("load", func(t *testing.T) {
		pods := []*apptest.Pod{apptest.NewPodOn(t, url), apptest.NewPodOn(t, url)}
		if st := call(pods[0], "/tokens/import", map[string]any{"tokens": values}, nil); st != http.StatusCreated {
			t.Fatalf("first import: HTTP %d", st)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pod := pods[w%2]
				for ctx.Err() == nil {
					var l struct {
						Token   string `json:"token"`
						LeaseID int64  `json:"lease_id"`
					}
					if call(pod, "/tokens/assign", nil, &l) != http.StatusOK {
						continue
					}
					call(pod, "/tokens/unblock", map[string]any{"token": l.Token, "lease_id": l.LeaseID}, nil)
					cycles.Add(1)
				}
			}()
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if call(pods[0], "/tokens/import", map[string]any{"tokens": values}, nil) == http.StatusCreated {
					imports.Add(1)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if call(pods[1], "/tokens/generate", map[string]any{"count": 500}, nil) == http.StatusCreated {
					generates.Add(1)
				}
			}
		}()
		wg.Wait()
	})
	// The pods are closed: their backends have reported their statistics
	// once they are gone.
	waitNoOtherBackends(t, admin)
	t.Logf("%d requests answered: %d assign/unblock cycles, %d imports of 2,000 values, %d generates of 500",
		answered.Load(), cycles.Load(), imports.Load(), generates.Load())
	for _, s := range samples {
		t.Error(s)
	}
	if n := fiveXX.Load(); n > 0 {
		t.Errorf("%d answers were 5xx", n)
	}
	if n := failed.Load(); n > 0 {
		t.Errorf("%d requests got no answer", n)
	}
	if imports.Load() < 2 || generates.Load() < 2 || cycles.Load() < 16 {
		t.Errorf("too little happened to show anything: %d imports, %d generates, %d cycles",
			imports.Load(), generates.Load(), cycles.Load())
	}
	if d := deadlocks(t, admin) - before; d != 0 {
		t.Errorf("PostgreSQL detected %d deadlocks in the test database", d)
	}
}

func deadlocks(t *testing.T, conn *pgx.Conn) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(context.Background(),
		"SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitNoOtherBackends waits until conn is the last connection to its
// database: a backend reports its statistics when it exits.
func waitNoOtherBackends(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var others int
		if err := conn.QueryRow(context.Background(), `
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&others); err != nil {
			t.Fatal(err)
		}
		if others == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d other connections to the test database are still open", others)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
