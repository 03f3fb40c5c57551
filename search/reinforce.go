package search

import (
	"fmt"
	"math"
	"time"
)

// GateReinforce is the REINFORCE variant of ProxylessNAS: the architecture
// step samples Config.RLSamples single-path networks from softmax(alpha),
// measures each one's top-1 accuracy on the held-out batch (BN in train
// mode, no gradients) and its latency from the table, and moves alpha along
// (1/M) sum_m (R_m - b) grad log p(path_m) with the reward
// R = ACC * (LAT/T)^w (w = Config.RLLatencyWeight) and a moving-average
// baseline b. It needs no differentiable objective; the latency loss form
// (Config.LatencyLoss) is not used, only T and the table.
const GateReinforce = "reinforce"

// reinforceSample is one sampled network of a REINFORCE step.
type reinforceSample struct {
	choice  []int
	acc, ce float64
	lat     float64 // 0 without a table
}

// reinforceStep is ArchStep in GateReinforce mode.
func (s *Searcher) reinforceStep(x []float32, labels []int) (ArchStats, error) {
	defer s.stepMemory()()
	start := time.Now()
	return s.reinforceUpdate(func(choice []int) (acc, ce float64, err error) {
		out, err := s.runNet(x, labels, netRun{choice: choice})
		if err != nil {
			return 0, 0, err
		}
		// a train-mode forward pass, as the reference runs it
		s.updateRunningStats(out.bn, out.res)
		return accuracy(out.logits, labels, s.plan.Classes), out.loss, nil
	}, start)
}

// reinforceUpdate samples Config.RLSamples paths, scores each with measure
// and applies the REINFORCE update with the moving-average baseline:
//
//	R_m = ACC_m * (LAT_m / T)^w          (ACC_m alone when w = 0 or no table)
//	b   = mean R                          at the first update, else
//	b  += RLBaselineDecay * (mean R - b)
//	dJ/dalpha_l,i = (1/M) sum_m (R_m - b) (1[path_m(l) = i] - p_l,i)
//
// with the baseline updated before the gradient is formed (as the
// reference code does), then one Adam step on -dJ/dalpha per layer.
func (s *Searcher) reinforceUpdate(measure func(choice []int) (acc, ce float64, err error), start time.Time) (ArchStats, error) {
	c := &s.cfg
	if s.lat == nil && c.RLLatencyWeight != 0 {
		return ArchStats{}, fmt.Errorf("search: reinforce: the reward's latency term (RLLatencyWeight %v) needs a latency table, got none", c.RLLatencyWeight)
	}
	probs := s.Probs()
	samples := make([]reinforceSample, c.RLSamples)
	var st ArchStats
	var meanR float64
	rewards := make([]float64, len(samples))
	for m := range samples {
		choice := s.samplePath(false)
		acc, ce, err := measure(choice)
		if err != nil {
			return ArchStats{}, err
		}
		sm := reinforceSample{choice: choice, acc: acc, ce: ce}
		r := acc
		if s.lat != nil {
			sm.lat = s.lat.Of(choice)
			if c.RLLatencyWeight != 0 {
				if !(sm.lat > 0) {
					return ArchStats{}, fmt.Errorf("search: reinforce: latency of path %v is %v; expected > 0", s.ChoiceNames(choice), sm.lat)
				}
				r *= math.Pow(sm.lat/c.TargetLatency, c.RLLatencyWeight)
			}
		}
		samples[m], rewards[m] = sm, r
		meanR += r
		st.CE += ce
		st.Accuracy += acc
	}
	n := float64(len(samples))
	meanR /= n
	st.CE /= n
	st.Accuracy /= n
	if !s.rl.set {
		s.rl.baseline, s.rl.set = meanR, true
	} else {
		s.rl.baseline += c.RLBaselineDecay * (meanR - s.rl.baseline)
	}
	for l := range s.alpha {
		g := make([]float64, len(s.alpha[l]))
		for m, sm := range samples {
			adv := (rewards[m] - s.rl.baseline) / n
			for i := range g {
				ind := 0.0
				if sm.choice[l] == i {
					ind = 1
				}
				g[i] -= adv * (ind - probs[l][i]) // Adam descends: the gradient of -J
			}
		}
		s.adam(l, g)
	}
	st.Loss = st.CE
	st.Reward, st.Baseline = meanR, s.rl.baseline
	st.Choice = samples[len(samples)-1].choice
	if s.lat != nil {
		st.ExpectedLatency = s.lat.Expected(s.Probs())
	}
	st.PathTime = time.Since(start)
	s.pos.ArchSteps++
	return st, nil
}

// rlState is the REINFORCE baseline, saved in checkpoints.
type rlState struct {
	baseline float64
	set      bool // false until the first update
}

func (c *Config) validateReinforce() error {
	if c.RLSamples < 1 {
		return fmt.Errorf("search config: RLSamples: expected >= 1, got %d", c.RLSamples)
	}
	if !(c.RLBaselineDecay >= 0 && c.RLBaselineDecay <= 1) {
		return fmt.Errorf("search config: RLBaselineDecay: expected a value in [0, 1], got %v", c.RLBaselineDecay)
	}
	if math.IsNaN(c.RLLatencyWeight) || math.IsInf(c.RLLatencyWeight, 0) {
		return fmt.Errorf("search config: RLLatencyWeight: expected a finite value, got %v", c.RLLatencyWeight)
	}
	if c.RLLatencyWeight != 0 && (!(c.TargetLatency > 0) || math.IsInf(c.TargetLatency, 0)) {
		return fmt.Errorf("search config: TargetLatency: expected a finite value > 0 for the %s reward (RLLatencyWeight %v), got %v", GateReinforce, c.RLLatencyWeight, c.TargetLatency)
	}
	return nil
}
