package search

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

func reinforceConfig() Config {
	c := testConfig()
	c.GateMode = GateReinforce
	c.RLLatencyWeight = 0
	c.ArchLR = 0.05
	c.Seed = 3
	return c
}

// On a toy problem whose reward is 1 when layer 0 takes candidate 0 and
// 0.2 otherwise, REINFORCE moves layer 0's alpha toward candidate 0 and
// leaves the other layer, whose choice does not matter, near uniform.
func TestReinforceToyMovesTowardRewardedPath(t *testing.T) {
	s := newTest(t, tinySpace(), reinforceConfig())
	p0 := s.Probs()
	measure := func(choice []int) (float64, float64, error) {
		if choice[0] == 0 {
			return 1, 0, nil
		}
		return 0.2, 0, nil
	}
	var st ArchStats
	for range 60 {
		var err error
		if st, err = s.reinforceUpdate(measure, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	p := s.Probs()
	if !(p[0][0] > 0.8) {
		t.Fatalf("p(layer 0 = rewarded candidate) went %.3f -> %.3f, want > 0.8", p0[0][0], p[0][0])
	}
	for j := range p[1] {
		if math.Abs(p[1][j]-p0[1][j]) > 0.25 {
			t.Errorf("layer 1 (no reward signal) moved: %v -> %v", p0[1], p[1])
		}
	}
	if !(st.Baseline > 0.6 && st.Baseline <= 1) || st.Reward < 0.2 {
		t.Errorf("baseline %v, reward %v", st.Baseline, st.Reward)
	}
	if s.Position().ArchSteps != 60 {
		t.Errorf("%d arch steps counted", s.Position().ArchSteps)
	}
}

// The baseline starts at the first mean reward and then follows
// b += decay * (mean R - b); the update uses the new baseline, so a first
// step with equal rewards does not move alpha.
func TestReinforceBaseline(t *testing.T) {
	cfg := reinforceConfig()
	cfg.RLSamples, cfg.RLBaselineDecay = 4, 0.5
	s := newTest(t, tinySpace(), cfg)
	a0 := s.Alpha()
	r := 0.5
	measure := func([]int) (float64, float64, error) { return r, 0, nil }
	st, err := s.reinforceUpdate(measure, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.Baseline != 0.5 {
		t.Fatalf("first baseline %v, want the first mean reward 0.5", st.Baseline)
	}
	a1 := s.Alpha()
	for l := range a0 {
		for j := range a0[l] {
			if a0[l][j] != a1[l][j] {
				t.Fatalf("equal rewards moved alpha[%d][%d]: %v -> %v", l, j, a0[l][j], a1[l][j])
			}
		}
	}
	r = 0.9
	if st, err = s.reinforceUpdate(measure, time.Now()); err != nil {
		t.Fatal(err)
	}
	if math.Abs(st.Baseline-0.7) > 1e-12 {
		t.Fatalf("second baseline %v, want 0.5 + 0.5*(0.9-0.5) = 0.7", st.Baseline)
	}
	// the baseline survives a checkpoint
	path := filepath.Join(t.TempDir(), "ckpt")
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	l, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.rl != s.rl {
		t.Fatalf("loaded baseline %+v, saved %+v", l.rl, s.rl)
	}
}

// On the Fashion-MNIST subset with a latency table, a strongly negative
// latency weight moves the distribution toward faster paths: E[LAT] falls
// and every layer's fastest candidate gains; with w = 0 (accuracy alone) on
// the same untrained supernet it falls less.
func TestReinforceLatencyWeightPrefersFastPaths(t *testing.T) {
	sp := subsetSpace()
	sp.Candidates = []string{"k3e3", "k7e6"}
	d := subsetData(t, 200, 64)
	run := func(w float64) (e0, e1 float64, pFast []float64) {
		cfg := reinforceConfig()
		cfg.RLLatencyWeight, cfg.ArchBatchSize, cfg.RLSamples, cfg.ArchLR = w, 32, 6, 0.1
		p := mustPlan(t, sp)
		tab := MACTable(p, 100)
		cfg.TargetLatency = tab.Entries[p.Layers[0].Key(p.Layers[0].Candidates[0])] * 4
		s, err := New(p, cfg, tab)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		e0 = s.Latency().Expected(s.Probs())
		rng := rand.New(rand.NewPCG(1, 1))
		for range 12 {
			idx := rng.Perm(d.Held.Len())[:cfg.ArchBatchSize]
			x, y := d.Held.Batch(idx, d.Norm, nil, nil, nil)
			if _, err := s.ArchStep(x, y); err != nil {
				t.Fatal(err)
			}
		}
		e1 = s.Latency().Expected(s.Probs())
		for _, pl := range s.Probs() {
			pFast = append(pFast, pl[0]) // k3e3 is every layer's fastest
		}
		return e0, e1, pFast
	}
	e0, e1, pFast := run(-3)
	if !(e1 < e0) {
		t.Fatalf("w=-3: E[LAT] %v -> %v, want it to fall", e0, e1)
	}
	for l, pf := range pFast {
		if !(pf > 0.5) {
			t.Errorf("w=-3: layer %d: p(fastest) = %.3f, want > 0.5", l, pf)
		}
	}
	_, f1, _ := run(0)
	t.Logf("E[LAT]: start %.2f, after 12 steps w=-3 %.2f, w=0 %.2f; p(fastest) with w=-3 %.3f", e0, e1, f1, pFast)
	if !(e1 < f1) {
		t.Errorf("E[LAT] after the steps: w=-3 %v, w=0 %v; want the latency weight to give the faster distribution", e1, f1)
	}
}
