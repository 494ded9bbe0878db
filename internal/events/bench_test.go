package events_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/app"
	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/config"
	"github.com/tokenlease/tokenlease/internal/tokens"
)

const (
	benchTokens  = 256 // free tokens, so that claims rarely meet
	benchWorkers = 8   // concurrent assign+unblock loops
)

func withoutEvents(_ *config.Config, o *app.Options) { o.DisableEvents = true }

// benchPod starts a pod without sweeps, with or without the events layer,
// and fills its pool.
func benchPod(b *testing.B, events bool) *apptest.Pod {
	b.Helper()
	opts := []apptest.Option{apptest.WithoutSweeper()}
	if !events {
		opts = append(opts, withoutEvents)
	}
	pod := apptest.NewPod(b, opts...)
	if _, err := pod.App.Service.Generate(context.Background(), "", benchTokens); err != nil {
		b.Fatal(err)
	}
	return pod
}

// cycles runs n assign+unblock cycles on svc with benchWorkers workers and
// returns how long they took.
func cycles(b *testing.B, svc *tokens.Service, n int) time.Duration {
	b.Helper()
	var left atomic.Int64
	left.Store(int64(n))
	var failed atomic.Value
	var wg sync.WaitGroup
	ctx := context.Background()
	start := time.Now()
	for range benchWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				l, err := svc.Assign(ctx, tokens.AssignRequest{})
				if err == nil {
					err = svc.Unblock(ctx, "", l.Token, &l.LeaseID)
				}
				if err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return took
}

// BenchmarkAssignUnblock measures assign+unblock cycles per second through
// the domain service with the events layer off and on (doorbell, LISTEN,
// log reader; nobody streams), and on with one SSE client that takes every
// event. The hot path never NOTIFYs per change, so "on" stays within
// a few percent of "off". Compare runs with benchstat, or read the ratio
// from BenchmarkAssignUnblockRatio.
func BenchmarkAssignUnblock(b *testing.B) {
	for _, mode := range []string{"events=off", "events=on", "events=on+stream"} {
		b.Run(mode, func(b *testing.B) {
			pod := benchPod(b, mode != "events=off")
			if mode == "events=on+stream" {
				drainStream(b, pod)
			}
			b.ResetTimer()
			took := cycles(b, pod.App.Service, b.N)
			b.ReportMetric(float64(b.N)/took.Seconds(), "cycles/s")
		})
	}
}

// BenchmarkAssignUnblockRatio alternates rounds on a pod without and a pod
// with the events layer, so that both see the same machine load, and
// reports both throughputs and their ratio (on/off; the goal is >= 0.90).
// "idle": nobody streams or waits, as most of the time; "stream": one SSE
// client takes every event over HTTP.
func BenchmarkAssignUnblockRatio(b *testing.B) {
	for _, mode := range []string{"idle", "stream"} {
		b.Run(mode, func(b *testing.B) {
			off, on := benchPod(b, false), benchPod(b, true)
			if mode == "stream" {
				drainStream(b, on)
			}
			const round = 500
			cycles(b, off.App.Service, round) // warm both up
			cycles(b, on.App.Service, round)
			b.ResetTimer()
			before := on.App.Events.Stats()
			var tOff, tOn time.Duration
			for done := 0; done < b.N; done += round {
				n := min(round, b.N-done)
				tOff += cycles(b, off.App.Service, n)
				tOn += cycles(b, on.App.Service, n)
			}
			offRate, onRate := float64(b.N)/tOff.Seconds(), float64(b.N)/tOn.Seconds()
			after := on.App.Events.Stats()
			b.ReportMetric(offRate, "off-cycles/s")
			b.ReportMetric(onRate, "on-cycles/s")
			b.ReportMetric(onRate/offRate, "on/off")
			b.ReportMetric(float64(after.Reads+after.Skips-before.Reads-before.Skips)/tOn.Seconds(), "reads/s")
			b.ReportMetric(float64(after.Rings-before.Rings)/tOn.Seconds(), "rings/s")
		})
	}
}

// drainStream opens an SSE stream on pod and reads it until the benchmark
// ends.
func drainStream(b *testing.B, pod *apptest.Pod) {
	b.Helper()
	s := openStream(b, pod, "/tokens/events", "")
	go func() {
		for ev := range s.events {
			if ev.Event == "dropped" {
				b.Error("the benchmark's stream was dropped as too slow")
			}
		}
	}()
}
