package faults_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/apptest"
	"github.com/tokenlease/tokenlease/internal/testdb"
	"github.com/tokenlease/tokenlease/internal/testproxy"
)

// The network between the pods and PostgreSQL fails: first it slows down
// (every request still succeeds, only slower), then it is cut (every open
// connection reset, new ones refused: 503s only, no hang), then it recovers
// (every pod serves again within 5 s, nothing lost, no token held twice).
func TestNetworkLatencyCutAndRecovery(t *testing.T) {
	t.Parallel()
	direct := testdb.NewURL(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testproxy.Start(t, u.Host)
	u.Host = proxy.Addr()
	podA := apptest.NewPodOn(t, u.String())
	podB := apptest.NewPodOn(t, u.String())
	tokens := podA.Generate(t, 12)

	ld := newLoad(podA, podB)
	ctx, stop := context.WithCancel(context.Background())
	wait := ld.run(ctx, 4)
	time.Sleep(500 * time.Millisecond) // load before the fault (not a sync)

	proxy.SetLatency(30 * time.Millisecond)
	before := ld.count("503 unavailable")
	time.Sleep(time.Second)
	if n := ld.count("503 unavailable") - before; n > 0 {
		t.Errorf("%d answers of 503 with a slow network only", n)
	}

	proxy.Cut()
	served := ld.count("200 ")
	time.Sleep(1500 * time.Millisecond)
	if n := ld.count("200 ") - served; n > 8 {
		t.Errorf("%d answers of 200 while the network was cut", n)
	}

	proxy.Restore()
	for _, pod := range []*apptest.Pod{podA, podB} {
		t.Logf("after the cut, %s serves again in %v", pod.URL, servesAgain(t, pod, 5*time.Second).Round(time.Millisecond))
	}
	time.Sleep(500 * time.Millisecond) // load after the fault
	stop()
	wait()
	ld.check(t)
	if ld.count("503 unavailable") == 0 {
		t.Error("no request met the cut: the test tested nothing")
	}
	nothingLost(t, tokens, podA, podB)
}
