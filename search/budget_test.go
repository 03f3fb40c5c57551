package search

import (
	"math"
	"math/rand/v2"
	"testing"
)

// budgetChoice finds the most probable choice in the latency band, the
// same one an exhaustive enumeration finds, and reports an empty band.
func TestBudgetChoiceExhaustive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 40 {
		layers, cands := 2+rng.IntN(4), 2+rng.IntN(4)
		lm := &LatencyModel{Fixed: 10 + 20*rng.Float64()}
		logp := make([][]float64, layers)
		for l := range layers {
			lat := make([]float64, cands)
			a := make([]float64, cands)
			for j := range cands {
				lat[j] = 30 * rng.Float64()
				a[j] = rng.NormFloat64()
			}
			lat[cands-1] = 0 // a zero candidate
			lm.Layer = append(lm.Layer, lat)
			logp[l] = logSoftmax(a)
		}
		lo := lm.Fixed + 40*rng.Float64()
		hi := lo + 15*rng.Float64()
		// exhaustive
		best, bestScore := []int(nil), math.Inf(-1)
		choice := make([]int, layers)
		var walk func(l int)
		walk = func(l int) {
			if l == layers {
				lat := lm.Of(choice)
				var sc float64
				for i, j := range choice {
					sc += logp[i][j]
				}
				if lat >= lo && lat <= hi && sc > bestScore+1e-12 {
					best, bestScore = append([]int(nil), choice...), sc
				}
				return
			}
			for j := range cands {
				choice[l] = j
				walk(l + 1)
			}
		}
		walk(0)
		got, ok := budgetChoice(logp, lm, lo, hi)
		if ok != (best != nil) {
			t.Fatalf("trial %d: found %v, exhaustive found %v", trial, ok, best != nil)
		}
		if !ok {
			continue
		}
		var sc float64
		for i, j := range got {
			sc += logp[i][j]
		}
		// a bin keeps one partial choice; a better one within budgetStep
		// of it can be lost only at the band's edges
		if lat := lm.Of(got); lat < lo || lat > hi {
			t.Errorf("trial %d: %v takes %.3f µs, outside [%.3f, %.3f]", trial, got, lat, lo, hi)
		}
		if sc < bestScore-1e-9 && !nearEdge(lm, best, lo, hi) {
			t.Errorf("trial %d: score %.4f (%v), exhaustive %.4f (%v)", trial, sc, got, bestScore, best)
		}
	}
}

func nearEdge(lm *LatencyModel, c []int, lo, hi float64) bool {
	lat := lm.Of(c)
	return lat-lo < float64(len(c))*budgetStep || hi-lat < float64(len(c))*budgetStep
}

// With DeriveBudget, Chosen spends the budget: a search whose argmax is
// the fastest network derives one in the band below the target.
func TestChosenBudget(t *testing.T) {
	lm := &LatencyModel{Fixed: 50, Layer: [][]float64{{10, 20, 0}, {10, 20, 0}, {10, 20, 0}}}
	s := &Searcher{lat: lm, cfg: Config{Derive: DeriveBudget, TargetLatency: 75}}
	// zero slightly ahead everywhere; the 20 µs op ahead of the 10 µs one
	s.alpha = [][]float64{{0, 0.1, 0.2}, {0, 0.1, 0.2}, {0, 0.1, 0.2}}
	if got := s.Argmax(); lm.Of(got) != 50 {
		t.Fatalf("argmax %v", got)
	}
	got := s.Chosen()
	if lat := lm.Of(got); lat < 75*(1-DeriveBand) || lat > 75 {
		t.Errorf("budget choice %v takes %.1f µs, want within [67.5, 75]", got, lat)
	}
	// a target below the fastest network: argmax
	s.cfg.TargetLatency = 40
	if got := s.Chosen(); lm.Of(got) != 50 {
		t.Errorf("unreachable target: %v", got)
	}
	s.cfg.Derive = DeriveArgmax
	s.cfg.TargetLatency = 75
	if got := s.Chosen(); lm.Of(got) != 50 {
		t.Errorf("argmax rule: %v", got)
	}
}
