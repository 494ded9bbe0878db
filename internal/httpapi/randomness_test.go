package httpapi_test

// Assign picks a random free token: not in generation order, and concurrent
// claimers do not pile up on one row.

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sync"
	"testing"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

// spearman is the rank correlation of two rankings of the same n items
// without ties: 1 for the same order, -1 for the reverse, near 0 for none.
func spearman(a, b []int) float64 {
	n := float64(len(a))
	var sum float64
	for i := range a {
		d := float64(a[i] - b[i])
		sum += d * d
	}
	return 1 - 6*sum/(n*(n*n-1))
}

func TestAssignOrderIsNotGenerationOrder(t *testing.T) {
	t.Parallel()
	const n = 300
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	generationRank := map[string]int{}
	for i, tok := range pod.Generate(t, n) {
		generationRank[tok] = i
	}
	var byGeneration, byAssignment []int
	for i := range n {
		l := pod.Assign(t, nil)
		rank, ok := generationRank[l.Token]
		if !ok {
			t.Fatalf("assign returned unknown token %q", l.Token)
		}
		delete(generationRank, l.Token) // a second hand-out would fail above
		byGeneration = append(byGeneration, rank)
		byAssignment = append(byAssignment, i)
	}
	rho := spearman(byGeneration, byAssignment)
	t.Logf("Spearman rank correlation of generation and assignment order over %d tokens: %.3f", n, rho)
	if math.Abs(rho) >= 0.3 {
		t.Fatalf("assignment follows generation order: rho = %.3f", rho)
	}
	wantError(t, pod.Call(t, "POST", "/tokens/assign", nil), http.StatusNotFound, "no_free_token")
}

func TestConcurrentClaimsDoNotCollide(t *testing.T) {
	t.Parallel()
	const poolSize, claimers, claimsEach = 200, 32, 5
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	pod.Generate(t, poolSize)

	tokens := make([][]string, claimers)
	errs := make([]error, claimers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range claimers {
		wg.Go(func() {
			<-start
			for range claimsEach {
				status, b, err := send(pod, "POST", "/tokens/assign", nil)
				var l apptest.Lease
				if err == nil && (status != http.StatusOK || json.Unmarshal(b, &l) != nil) {
					err = fmt.Errorf("claim answered %d %s", status, oneLine(b))
				}
				if err != nil {
					errs[i] = err
					return
				}
				tokens[i] = append(tokens[i], l.Token)
			}
		})
	}
	close(start)
	wg.Wait()
	seen := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("claimer %d: %v", i, err)
		}
		for _, tok := range tokens[i] {
			if seen[tok] {
				t.Fatalf("token %s was handed to two concurrent claimers", tok)
			}
			seen[tok] = true
		}
	}
	if len(seen) != claimers*claimsEach {
		t.Fatalf("%d distinct tokens for %d claims", len(seen), claimers*claimsEach)
	}
	if s := pod.Stats(t); s.Assigned != claimers*claimsEach {
		t.Fatalf("stats = %+v after %d claims", s, claimers*claimsEach)
	}
}
