package search

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pnasml/pnas/data"
	"github.com/pnasml/pnas/search/internal/gx"
	"github.com/pnasml/pnas/search/space"
)

// tinySpace is a small space for fast tests: 8x8x1 input, one stage of
// two searchable layers (the second can be Zero), 3 classes.
func tinySpace(cands ...string) *space.Space {
	if len(cands) == 0 {
		cands = []string{"k3e3", "k5e3", "zero"}
	}
	return &space.Space{
		Name:    "tiny",
		Input:   space.Input{Height: 8, Width: 8, Channels: 1},
		Classes: 3,
		Stem:    space.Conv{Channels: 4, Kernel: 3, Stride: 1},
		First:   space.Block{Channels: 4, Kernel: 3, Expand: 1, Stride: 1},
		Stages: []space.Stage{
			{Channels: 6, Stride: 2, Layers: 2},
		},
		Head:       space.Head{Channels: 8},
		Candidates: cands,
	}
}

func mustPlan(t testing.TB, s *space.Space) *space.Plan {
	t.Helper()
	p, err := s.Plan()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// synthBatch returns n images whose mean brightness encodes the label, so
// the classes are learnable.
func synthBatch(p *space.Plan, n int, rng *rand.Rand) ([]float32, []int) {
	in := p.Stem.In
	per := in.C * in.H * in.W
	x := make([]float32, n*per)
	y := make([]int, n)
	for i := 0; i < n; i++ {
		y[i] = rng.IntN(p.Classes)
		for j := 0; j < per; j++ {
			x[i*per+j] = float32(rng.NormFloat64()*0.5) + float32(y[i]) - 1
		}
	}
	return x, y
}

func testConfig() Config {
	c := DefaultConfig()
	c.BatchSize, c.ArchBatchSize = 8, 8
	c.LatencyLoss = LossNone
	return c
}

func newTest(t testing.TB, s *space.Space, cfg Config) *Searcher {
	t.Helper()
	p := mustPlan(t, s)
	var tab LatencyTable
	if cfg.LatencyLoss != LossNone {
		tab = MACTable(p, 1000)
	}
	se, err := New(p, cfg, tab)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(se.Close)
	return se
}

func TestWeightStepLearns(t *testing.T) {
	cfg := testConfig()
	s := newTest(t, tinySpace(), cfg)
	rng := rand.New(rand.NewPCG(1, 1))
	x, y := synthBatch(s.Plan(), 16, rng)
	var first, last float64
	for i := 0; i < 30; i++ {
		st, err := s.WeightStep(x, y, 0.05, false)
		if err != nil {
			t.Fatal(err)
		}
		if math.IsNaN(st.Loss) {
			t.Fatalf("step %d: loss is NaN", i)
		}
		if i == 0 {
			first = st.Loss
		}
		last = st.Loss
	}
	if !(last < first*0.8) {
		t.Fatalf("loss did not fall: first %g, last %g", first, last)
	}
}

func numCustomVJPs() int { return gx.NumCustom() }

// TestChoiceChecked: a choice vector naming a candidate a layer does not
// have is an error naming the layer, in every method that takes one.
func TestChoiceChecked(t *testing.T) {
	s := newTest(t, tinySpace(), testConfig())
	p := s.Plan()
	ds := synthDataset(p, 8, 1)
	norm := data.Normalization{Mean: []float32{0.5}, Std: []float32{0.25}}
	x, y := synthBatch(p, 8, rand.New(rand.NewPCG(1, 2)))
	bad := make([]int, len(p.Layers))
	bad[1] = 99
	for name, err := range map[string]error{
		"evaluate":    func() error { _, err := s.Evaluate(ds, norm, bad, false); return err }(),
		"recalibrate": s.RecalibrateBN(ds, norm, bad, 8),
		"train step":  func() error { _, err := s.TrainStep(x, y, 0.1, bad); return err }(),
		"derive":      func() error { _, err := s.DeriveChoice(bad, DeriveOptions{}); return err }(),
	} {
		if err == nil || !strings.Contains(err.Error(), "search: "+name+": choice[1]: expected 0..") {
			t.Errorf("%s with candidate 99 at layer 1: error %v", name, err)
		}
	}
	if _, err := s.TrainStep(x, y, 0.1, bad[:1]); err == nil || !strings.Contains(err.Error(), "expected 2 choices, got 1") {
		t.Errorf("TrainStep with a short choice: error %v", err)
	}
}
