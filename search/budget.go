package search

import (
	"fmt"
	"math"
)

// budgetStep is the latency resolution, in µs, of the budget derivation's
// table; the band check itself uses exact sums.
const budgetStep = 0.05

// Chosen returns the architecture the search derives under its Derive
// rule: Argmax, or with DeriveBudget the most probable architecture in the
// band below the target latency (see DeriveBudget).
func (s *Searcher) Chosen() []int {
	if s.cfg.Derive != DeriveBudget || s.lat == nil || !(s.cfg.TargetLatency > 0) {
		return s.Argmax()
	}
	t := s.cfg.TargetLatency
	logp := make([][]float64, len(s.alpha))
	for l, a := range s.alpha {
		logp[l] = logSoftmax(a)
	}
	if c, ok := budgetChoice(logp, s.lat, t*(1-DeriveBand), t); ok {
		return c
	}
	if c, ok := budgetChoice(logp, s.lat, math.Inf(-1), t); ok {
		return c
	}
	return s.Argmax()
}

func logSoftmax(a []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range a {
		m = math.Max(m, v)
	}
	var z float64
	for _, v := range a {
		z += math.Exp(v - m)
	}
	lz := m + math.Log(z)
	out := make([]float64, len(a))
	for j, v := range a {
		out[j] = v - lz
	}
	return out
}

// budgetChoice returns the choice that maximizes the sum of logp[l][j]
// over the layers among those whose latency lm.Of lies in [lo, hi], by
// dynamic programming over the latency in budgetStep bins (each bin keeps
// its most probable partial choice and that choice's exact latency), and
// false when no choice lies in the band. Ties go to the earlier candidate.
func budgetChoice(logp [][]float64, lm *LatencyModel, lo, hi float64) ([]int, bool) {
	if hi < lm.Fixed {
		return nil, false
	}
	nb := int(math.Floor((hi-lm.Fixed)/budgetStep)) + 1
	type state struct {
		score, lat float64
		ok         bool
	}
	cur := make([]state, nb)
	cur[0] = state{0, lm.Fixed, true}
	// back[l][b]: candidate and previous bin of the best state in bin b
	// after layer l
	type step struct{ j, prev int32 }
	back := make([][]step, len(logp))
	for l, lp := range logp {
		next := make([]state, nb)
		back[l] = make([]step, nb)
		for b, st := range cur {
			if !st.ok {
				continue
			}
			for j, v := range lp {
				lat := st.lat + lm.Layer[l][j]
				if lat > hi {
					continue
				}
				nb2 := int(math.Round((lat - lm.Fixed) / budgetStep))
				if nb2 >= nb {
					nb2 = nb - 1
				}
				sc := st.score + v
				if n := &next[nb2]; !n.ok || sc > n.score {
					*n = state{sc, lat, true}
					back[l][nb2] = step{int32(j), int32(b)}
				}
			}
		}
		cur = next
	}
	best := -1
	for b, st := range cur {
		if st.ok && st.lat >= lo && st.lat <= hi && (best < 0 || st.score > cur[best].score) {
			best = b
		}
	}
	if best < 0 {
		return nil, false
	}
	choice := make([]int, len(logp))
	for l, b := len(logp)-1, best; l >= 0; l-- {
		st := back[l][b]
		choice[l] = int(st.j)
		b = int(st.prev)
	}
	return choice, true
}

// SetDerivation changes how a finished search reads its network off alpha:
// derive (DeriveArgmax or DeriveBudget) at target latency target (µs; only
// DeriveBudget reads it). Nothing else of the search changes, so one search
// whose architecture steps did not read the target (LossNone) gives the
// network of each budget.
func (s *Searcher) SetDerivation(derive string, target float64) error {
	c := s.cfg
	c.Derive = derive
	if derive == DeriveBudget {
		c.TargetLatency = target
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if c.Derive == DeriveBudget && s.lat == nil {
		return fmt.Errorf("search: derivation %q needs a latency table; the search ran without one", DeriveBudget)
	}
	s.cfg = c
	return nil
}
