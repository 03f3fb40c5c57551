package search

import (
	"math"
	"strings"
	"testing"

	"github.com/pnasml/pnas/search/space"
)

func TestLatencyModel(t *testing.T) {
	p := mustPlan(t, space.FMNIST())
	tab := MACTable(p, 2)
	m, err := NewLatencyModel(p, tab)
	if err != nil {
		t.Fatal(err)
	}
	if want := float64(FixedMACs(p)) * 2 / 1e6; math.Abs(m.Fixed-want) > 1e-9 {
		t.Errorf("fixed latency %g, want %g", m.Fixed, want)
	}
	// E[LAT] by hand for a random-ish distribution, and Of for a choice.
	probs := make([][]float64, len(p.Layers))
	want := m.Fixed
	choice := make([]int, len(p.Layers))
	for l, layer := range p.Layers {
		k := len(layer.Candidates)
		probs[l] = make([]float64, k)
		for j := range probs[l] {
			probs[l][j] = float64(j+1) / float64(k*(k+1)/2)
			want += probs[l][j] * float64(LayerMACs(layer, layer.Candidates[j])) * 2 / 1e6
		}
		choice[l] = l % k
	}
	if got := m.Expected(probs); math.Abs(got-want) > 1e-9 {
		t.Errorf("expected latency %g, want %g", got, want)
	}
	if got, want := m.Of(choice), float64(ArchMACs(p, choice))*2/1e6; math.Abs(got-want) > 1e-9 {
		t.Errorf("architecture latency %g, want %g", got, want)
	}
	// Zero adds nothing.
	if m.Layer[1][6] != 0 || m.Keys[1][6] != "" {
		t.Errorf("zero candidate: latency %g key %q", m.Layer[1][6], m.Keys[1][6])
	}
	// A missing key is an error that names it.
	key := p.Layers[5].Key(p.Layers[5].Candidates[3])
	delete(tab.Entries, key)
	if _, err := NewLatencyModel(p, tab); err == nil || !strings.Contains(err.Error(), key) {
		t.Errorf("missing key: error %v, want it to name %s", err, key)
	}
}

func TestLatencyLossForms(t *testing.T) {
	for _, l := range []LossFunc{
		{Form: LossMulLog, Target: 80, A: 0.2, Beta: 0.3},
		{Form: LossAddLinear, Target: 80, Lambda: 0.1},
		{Form: LossAddHinge, Target: 80, Lambda: 0.1},
		{Form: LossAddHinge, Target: 120, Lambda: 0.1},
		{Form: LossNone},
	} {
		ce, e := 1.7, 95.0
		loss, dCE, dE, err := l.Eval(ce, e)
		if err != nil {
			t.Fatal(err)
		}
		var want float64
		switch l.Form {
		case LossMulLog:
			want = 0.2 * ce * math.Pow(math.Log(e)/math.Log(80), 0.3)
		case LossAddLinear:
			want = ce + 0.1*(e-80)/80
		case LossAddHinge:
			// above the target as add#linear; below it plain CE
			want = ce + 0.1*math.Max(0, (e-l.Target)/l.Target)
		default:
			want = ce
		}
		if math.Abs(loss-want) > 1e-12 {
			t.Errorf("%s: loss %g, want %g", l.Form, loss, want)
		}
		const h = 1e-6
		lp, _, _, _ := l.Eval(ce+h, e)
		lm, _, _, _ := l.Eval(ce-h, e)
		if num := (lp - lm) / (2 * h); math.Abs(num-dCE) > 1e-7 {
			t.Errorf("%s: dL/dCE %g, finite differences %g", l.Form, dCE, num)
		}
		lp, _, _, _ = l.Eval(ce, e+h)
		lm, _, _, _ = l.Eval(ce, e-h)
		if num := (lp - lm) / (2 * h); math.Abs(num-dE) > 1e-7 {
			t.Errorf("%s: dL/dE %g, finite differences %g", l.Form, dE, num)
		}
	}
	if _, _, _, err := (LossFunc{Form: LossMulLog, Target: 80, A: 0.2, Beta: 0.3}).Eval(1, 0.5); err == nil {
		t.Errorf("mul#log with E below 1 and T above 1: expected an error")
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.TargetLatency = 80
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.GateMode = "full" }, `GateMode: expected "full_v2", "two", "all" or "reinforce", got "full"`},
		{func(c *Config) { c.GateMode, c.RLSamples = GateReinforce, 0 }, "RLSamples: expected >= 1, got 0"},
		{func(c *Config) { c.GateMode, c.RLBaselineDecay = GateReinforce, 2 }, "RLBaselineDecay: expected a value in [0, 1], got 2"},
		{func(c *Config) { c.GateMode, c.LatencyLoss, c.TargetLatency = GateReinforce, LossNone, 0 }, "TargetLatency: expected a finite value > 0 for the reinforce reward"},
		{func(c *Config) { c.BatchSize = 1 }, "BatchSize: expected >= 2, got 1"},
		{func(c *Config) { c.Momentum = 1 }, "Momentum: expected a value in [0, 1), got 1"},
		{func(c *Config) { c.TargetLatency = 0 }, "TargetLatency: expected a finite value > 0, got 0"},
		{func(c *Config) { c.LatencyLoss = "mul" }, `LatencyLoss: expected "mul#log", "add#linear", "add#hinge" or "none", got "mul"`},
		{func(c *Config) { c.ArchEvery = 0 }, "ArchEvery: expected >= 1, got 0"},
		{func(c *Config) { c.Sharing = "shared" }, `Sharing: expected "none" or "nested", got "shared"`},
	} {
		c := DefaultConfig()
		c.TargetLatency = 80
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want it to contain %q", err, tc.want)
		}
	}
}

func TestLearningRateSchedule(t *testing.T) {
	c := DefaultConfig()
	c.WarmupEpochs, c.SearchEpochs = 2, 4
	if got := c.LearningRate(0, 0, 10); got != c.WarmupLR {
		t.Errorf("first warm-up step: %g, want %g", got, c.WarmupLR)
	}
	if got := c.LearningRate(1, 0, 10); math.Abs(got-c.WarmupLR/2) > 1e-12 {
		t.Errorf("warm-up midpoint: %g, want %g", got, c.WarmupLR/2)
	}
	if got := c.LearningRate(2, 0, 10); got != c.LR {
		t.Errorf("first search step: %g, want %g", got, c.LR)
	}
	if got := c.LearningRate(4, 0, 10); math.Abs(got-c.LR/2) > 1e-12 {
		t.Errorf("search midpoint: %g, want %g", got, c.LR/2)
	}
	c.TrainEpochs, c.TrainLR = 2, 0.01
	if got := c.LearningRate(6, 0, 10); got != c.TrainLR {
		t.Errorf("first train step: %g, want %g", got, c.TrainLR)
	}
	if got := c.LearningRate(7, 0, 10); math.Abs(got-c.TrainLR/2) > 1e-12 {
		t.Errorf("train midpoint: %g, want %g", got, c.TrainLR/2)
	}
}
