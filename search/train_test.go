package search

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pnasml/pnas/data"
	"github.com/pnasml/pnas/search/space"
)

// subsetSpace is a small space for the 28x28 Fashion-MNIST subset.
func subsetSpace() *space.Space {
	return &space.Space{
		Name:       "tiny28",
		Input:      space.Input{Height: 28, Width: 28, Channels: 1},
		Classes:    10,
		Stem:       space.Conv{Channels: 4, Kernel: 3, Stride: 2},
		First:      space.Block{Channels: 4, Kernel: 3, Expand: 1, Stride: 2},
		Stages:     []space.Stage{{Channels: 8, Stride: 2, Layers: 2}},
		Head:       space.Head{Channels: 16},
		Candidates: []string{"k3e3", "k5e3", "zero"},
	}
}

// subsetData is the first n training images of the embedded subset, with
// held images held out.
func subsetData(t testing.TB, n, held int) Data {
	t.Helper()
	all, err := data.Open("fashion-mnist-subset", "train", 1, 28, 28)
	if err != nil {
		t.Fatal(err)
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i * (all.Len() / n)
	}
	tr, ho, err := data.HoldOut(all.Subset(idx), held, 1)
	if err != nil {
		t.Fatal(err)
	}
	return Data{Train: tr, Held: ho, Norm: tr.Stats()}
}

func tinyTrainConfig() TrainConfig {
	c := DefaultTrainConfig()
	c.Epochs, c.WarmupEpochs, c.BatchSize, c.EvalBatchSize, c.BNImages = 3, 1, 16, 32, 64
	c.Erase = 0.5
	c.Seed = 5
	return c
}

func newTrainer(t testing.TB, cfg TrainConfig) *Trainer {
	t.Helper()
	p := mustPlan(t, subsetSpace())
	tr, err := NewTrainer(p, []int{1, 0}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

func TestTrainLearningRate(t *testing.T) {
	c := DefaultTrainConfig()
	c.LR, c.Epochs, c.WarmupEpochs = 0.1, 5, 1
	const iters = 10
	for _, tc := range []struct {
		epoch, iter int
		want        float64
	}{
		{0, 0, 0.01}, // first warm-up step: LR/10
		{0, 4, 0.05}, // linear
		{0, 9, 0.1},  // end of the warm-up: the peak
		{1, 0, 0.1},  // cosine starts at the peak
		{3, 0, 0.05}, // half-way through the 40 cosine steps
		{4, 9, 0.05 * (1 + math.Cos(math.Pi*39/40))}, // last step, above 0
	} {
		if got := c.LearningRate(tc.epoch, tc.iter, iters); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("LearningRate(%d, %d) = %v, want %v", tc.epoch, tc.iter, got, tc.want)
		}
	}
}

func TestTrainDecayExclusion(t *testing.T) {
	c := DefaultTrainConfig()
	for name, want := range map[string]bool{
		"stem.conv.weight": true, "s1.l0.k3e3.dw.conv.weight": true, "classifier.weight": true,
		"stem.bn.scale": false, "s1.l0.k3e3.project.bn.bias": false, "classifier.bias": false,
	} {
		if got := c.Decays(name); got != want {
			t.Errorf("Decays(%q) = %v, want %v", name, got, want)
		}
	}
	// Behaviour: one step with a huge weight decay against none, from the
	// same weights and batch: the convolution weights differ, the BN
	// parameters and the classifier bias do not.
	d := subsetData(t, 64, 32)
	step := func(wd float64) map[string][]float32 {
		cfg := tinyTrainConfig()
		cfg.WeightDecay, cfg.Epochs, cfg.WarmupEpochs = wd, 1, 0
		tr := newTrainer(t, cfg)
		stop := errors.New("stop")
		err := tr.Run(context.Background(), d, TrainHooks{Step: func(TrainStepInfo) error { return stop }})
		if !errors.Is(err, stop) {
			t.Fatal(err)
		}
		return tr.Weights()
	}
	a, b := step(0), step(10)
	for n := range a {
		same := slices.Equal(a[n], b[n])
		if c.Decays(n) == same {
			t.Errorf("%s: decays %v but equal after a step with and without decay: %v", n, c.Decays(n), same)
		}
	}
}

// The training loss is the label-smoothed cross entropy of the logits:
// (1-eps) CE(true class) + eps * mean over classes of -log p.
func TestTrainLabelSmoothing(t *testing.T) {
	d := subsetData(t, 64, 32)
	cfg := tinyTrainConfig()
	cfg.Pad, cfg.Flip, cfg.Erase, cfg.LabelSmoothing = 0, false, 0, 0.1
	tr := newTrainer(t, cfg)
	order := permutation(d.Train.Len(), uint64(cfg.Seed), streamOrder)
	x, y := d.Train.Batch(order[:cfg.BatchSize], d.Norm, nil, nil, nil)
	out, err := tr.s.runNet(x, y, netRun{choice: tr.choice})
	if err != nil {
		t.Fatal(err)
	}
	k := tr.s.plan.Classes
	var want float64
	for n, l := range y {
		row := out.logits[n*k : (n+1)*k]
		mx := slices.Max(row)
		var z float64
		for _, v := range row {
			z += math.Exp(v - mx)
		}
		var uni float64
		for _, v := range row {
			uni += -(v - mx - math.Log(z))
		}
		want += (1-0.1)*-(row[l]-mx-math.Log(z)) + 0.1*uni/float64(k)
	}
	want /= float64(len(y))
	var got float64
	stop := errors.New("stop")
	err = tr.Run(context.Background(), d, TrainHooks{Step: func(si TrainStepInfo) error { got = si.Loss; return stop }})
	if !errors.Is(err, stop) {
		t.Fatal(err)
	}
	if math.Abs(got-want) > 1e-4*want {
		t.Fatalf("smoothed loss %v, want %v", got, want)
	}
}

func TestTrainErase(t *testing.T) {
	const n, c, h, w = 200, 2, 28, 28
	x := make([]float32, n*c*h*w)
	for i := range x {
		x[i] = 1
	}
	erase(x, n, c, h, w, 0.5, rand.New(rand.NewPCG(1, 2)))
	erased := 0
	for i := range n {
		z0, z1 := 0, 0
		for j := range h * w {
			if x[(i*c)*h*w+j] == 0 {
				z0++
			}
			if x[(i*c+1)*h*w+j] == 0 {
				z1++
			}
		}
		if z0 != z1 {
			t.Fatalf("image %d: %d erased pixels in channel 0, %d in channel 1", i, z0, z1)
		}
		if z0 > 0 {
			erased++
			if f := float64(z0) / (h * w); f < 0.01 || f > 0.4 {
				t.Fatalf("image %d: erased fraction %.3f outside [0.02, 1/3] (rounded)", i, f)
			}
		}
	}
	if erased < 70 || erased > 130 {
		t.Fatalf("%d of %d images erased at p=0.5", erased, n)
	}
	y := []float32{1, 1, 1, 1}
	erase(y, 1, 1, 2, 2, 0, rand.New(rand.NewPCG(1, 2)))
	if !slices.Equal(y, []float32{1, 1, 1, 1}) {
		t.Fatal("p=0 erased pixels")
	}
}

// Augmentation is applied: the first step's loss differs with and without it.
func TestTrainAugments(t *testing.T) {
	d := subsetData(t, 64, 32)
	first := func(pad int, flip bool, erase float64) float64 {
		cfg := tinyTrainConfig()
		cfg.Pad, cfg.Flip, cfg.Erase = pad, flip, erase
		tr := newTrainer(t, cfg)
		var loss float64
		stop := errors.New("stop")
		if err := tr.Run(context.Background(), d, TrainHooks{Step: func(si TrainStepInfo) error { loss = si.Loss; return stop }}); !errors.Is(err, stop) {
			t.Fatal(err)
		}
		return loss
	}
	plain := first(0, false, 0)
	for _, tc := range []struct {
		pad   int
		flip  bool
		erase float64
	}{{2, false, 0}, {0, true, 0}, {0, false, 1}} {
		if l := first(tc.pad, tc.flip, tc.erase); l == plain {
			t.Errorf("pad %d flip %v erase %v: same first loss as without augmentation (%v)", tc.pad, tc.flip, tc.erase, l)
		}
	}
}

// A training stopped mid-epoch, saved and resumed ends with bit-identical
// weights, epoch reports and model to an uninterrupted one; the held-out
// selection keeps the best epoch; the model records its architecture.
func TestTrainResumeBitIdentical(t *testing.T) {
	d := subsetData(t, 160, 48)
	cfg := tinyTrainConfig()
	var full []TrainEpochInfo
	a := newTrainer(t, cfg)
	if err := a.Run(context.Background(), d, TrainHooks{Epoch: func(e TrainEpochInfo) error { full = append(full, e); return nil }}); err != nil {
		t.Fatal(err)
	}
	ma, eva, err := a.Finish(d, DeriveOptions{Mean: d.Norm.Mean, Std: d.Norm.Std})
	if err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "ckpt")
	b := newTrainer(t, cfg)
	stop := errors.New("stop")
	var parts []TrainEpochInfo
	hooks := TrainHooks{
		Step: func(si TrainStepInfo) error {
			if si.Position.WeightSteps == 11 { // mid-epoch 1 (7 steps per epoch)
				return stop
			}
			return nil
		},
		Epoch: func(e TrainEpochInfo) error { parts = append(parts, e); return nil },
	}
	if err := b.Run(context.Background(), d, hooks); !errors.Is(err, stop) {
		t.Fatalf("expected the stop, got %v", err)
	}
	if err := b.Save(path); err != nil {
		t.Fatal(err)
	}
	b.Close()
	c, err := LoadTrainer(path, Placement{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hooks.Step = nil
	if err := c.Run(context.Background(), d, hooks); err != nil {
		t.Fatal(err)
	}
	if len(parts) != len(full) {
		t.Fatalf("%d epochs reported, want %d", len(parts), len(full))
	}
	for i := range full {
		if parts[i] != full[i] {
			t.Errorf("epoch %d: resumed %+v, uninterrupted %+v", i, parts[i], full[i])
		}
	}
	mc, evc, err := c.Finish(d, DeriveOptions{Mean: d.Norm.Mean, Std: d.Norm.Std})
	if err != nil {
		t.Fatal(err)
	}
	if evc != eva {
		t.Errorf("final held-out: resumed %+v, uninterrupted %+v", evc, eva)
	}
	for _, k := range ma.ParamNames() {
		if !slices.Equal(ma.Params[k].Data, mc.Params[k].Data) {
			t.Errorf("%s differs after resume", k)
		}
	}
	// selection: the best epoch's accuracy is the maximum reported
	be, bacc := c.Best()
	for _, e := range full {
		if e.Held.Accuracy > bacc || (e.Best && e.Epoch > be) {
			t.Errorf("best epoch %d (%.3f) but epoch %d: %+v", be, bacc, e.Epoch, e)
		}
	}
	if full[len(full)-1].TrainLoss >= full[0].TrainLoss {
		t.Errorf("training loss did not fall: %v then %v", full[0].TrainLoss, full[len(full)-1].TrainLoss)
	}
	// the model names its architecture; a trainer initialized from it has its weights
	plan, choice, err := ModelArch(ma, subsetSpace())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(choice, a.Choice()) {
		t.Fatalf("ModelArch choice %v, want %v", choice, a.Choice())
	}
	e, err := NewTrainer(plan, choice, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.InitFrom(ma); err != nil {
		t.Fatal(err)
	}
	ew := e.Weights()
	for n, w := range a.Weights() {
		if !slices.Equal(ew[n], w) {
			t.Errorf("InitFrom: %s differs", n)
		}
	}
}
