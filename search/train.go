package search

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/pnasml/pnas/internal/atomicfile"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"

	"github.com/pnasml/pnas/data"
	"github.com/pnasml/pnas/internal/archnet"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/search/space"
)

// TrainConfig is the recipe with which a Trainer trains one network of a
// space. DefaultTrainConfig gives the reference values.
type TrainConfig struct {
	Seed          int64   // seeds the weights (when not initialized from a model), data order and augmentation
	Epochs        int     // passes over the training set
	BatchSize     int     // images per step
	EvalBatchSize int     // images per batch of the held-out evaluation and the BN re-estimation
	LR            float64 // peak learning rate
	WarmupEpochs  int     // linear warm-up from LR/(warm-up steps) to LR, then a cosine to 0 (per step)

	Momentum       float64 // SGD momentum
	Nesterov       bool    // Nesterov momentum
	WeightDecay    float64 // L2 on the convolution and linear weights
	DecayAll       bool    // L2 on BN scales and shifts and on biases too (the reference excludes them)
	LabelSmoothing float64 // label smoothing of the training cross entropy

	Pad   int     // random crop: zero padding on every side (0: none)
	Flip  bool    // random horizontal flip
	Erase float64 // random erasing probability per image (0: none)

	BNImages int // training images over which the BN statistics are re-estimated at the end (0: keep the running ones)

	Parallelism int    // Config.Parallelism
	Backend     string // Config.Backend
}

// DefaultTrainConfig returns the reference recipe: SGD with Nesterov
// momentum 0.9, a cosine learning rate with one warm-up epoch, weight decay
// 4e-5 not on BN or biases, label smoothing 0.1, random crop with 2-pixel
// padding and horizontal flip, no random erasing, BN statistics
// re-estimated over 2,000 training images.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{
		Epochs: 30, BatchSize: 128, EvalBatchSize: 250, LR: 0.1, WarmupEpochs: 1,
		Momentum: 0.9, Nesterov: true, WeightDecay: 4e-5, LabelSmoothing: 0.1,
		Pad: 2, Flip: true, BNImages: 2000,
	}
}

// Validate checks the recipe.
func (c *TrainConfig) Validate() error {
	for _, i := range []struct {
		name   string
		v, min int
	}{{"Epochs", c.Epochs, 1}, {"BatchSize", c.BatchSize, 2}, {"EvalBatchSize", c.EvalBatchSize, 2},
		{"WarmupEpochs", c.WarmupEpochs, 0}, {"Pad", c.Pad, 0}, {"BNImages", c.BNImages, 0}, {"Parallelism", c.Parallelism, 0}} {
		if i.v < i.min {
			return fmt.Errorf("train config: %s: expected >= %d, got %d", i.name, i.min, i.v)
		}
	}
	if c.WarmupEpochs >= c.Epochs {
		return fmt.Errorf("train config: WarmupEpochs: expected fewer than Epochs (%d), got %d", c.Epochs, c.WarmupEpochs)
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		return fmt.Errorf("train config: LR: expected a finite value > 0, got %v", c.LR)
	}
	if !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0) {
		return fmt.Errorf("train config: WeightDecay: expected a finite value >= 0, got %v", c.WeightDecay)
	}
	for _, u := range []struct {
		name string
		v    float64
	}{{"Momentum", c.Momentum}, {"LabelSmoothing", c.LabelSmoothing}} {
		if !(u.v >= 0 && u.v < 1) {
			return fmt.Errorf("train config: %s: expected a value in [0, 1), got %v", u.name, u.v)
		}
	}
	if !(c.Erase >= 0 && c.Erase <= 1) {
		return fmt.Errorf("train config: Erase: expected a probability in [0, 1], got %v", c.Erase)
	}
	return nil
}

// LearningRate returns the learning rate of step iter of epoch: during the
// first WarmupEpochs it rises linearly, LR*(t+1)/W over the W warm-up steps,
// then it follows a cosine from LR to 0 over the remaining steps.
func (c *TrainConfig) LearningRate(epoch, iter, itersPerEpoch int) float64 {
	t := epoch*itersPerEpoch + iter
	w := c.WarmupEpochs * itersPerEpoch
	if t < w {
		return c.LR * float64(t+1) / float64(w)
	}
	total := (c.Epochs - c.WarmupEpochs) * itersPerEpoch
	return 0.5 * c.LR * (1 + math.Cos(math.Pi*float64(t-w)/float64(total)))
}

// Decays reports whether the recipe's weight decay applies to the supernet
// parameter name: convolution and linear weights, not BN scales and shifts
// or biases (unless DecayAll).
func (c *TrainConfig) Decays(name string) bool {
	if c.DecayAll {
		return true
	}
	return !strings.Contains(name, ".bn.") && !strings.HasSuffix(name, ".bias")
}

func (c *TrainConfig) searchConfig() Config {
	cfg := DefaultConfig()
	cfg.Seed = c.Seed
	cfg.BatchSize, cfg.ArchBatchSize = c.BatchSize, c.EvalBatchSize
	cfg.WarmupEpochs, cfg.SearchEpochs, cfg.TrainEpochs = 0, 0, c.Epochs
	cfg.LR, cfg.TrainLR = c.LR, c.LR
	cfg.Momentum, cfg.Nesterov, cfg.WeightDecay, cfg.LabelSmoothing = c.Momentum, c.Nesterov, c.WeightDecay, c.LabelSmoothing
	cfg.LatencyLoss = LossNone
	cfg.Parallelism, cfg.Backend = c.Parallelism, c.Backend
	return cfg
}

// Trainer trains one network of a space (a choice of candidate per layer)
// with a TrainConfig. It runs on a Searcher: the same graphs, SGD, BN
// statistics, data order and checkpoints, with the path fixed.
type Trainer struct {
	s      *Searcher
	cfg    TrainConfig
	choice []int
	names  []string // supernet parameters of the network, in build order
	st     trainState
	best   map[string][]float32 // the weights at the best held-out epoch
	xb     []float32
}

// trainState is what a trainer checkpoint holds besides the searcher's.
type trainState struct {
	Format    string      `json:"format"`
	Version   int         `json:"version"`
	Config    TrainConfig `json:"config"`
	Choice    []int       `json:"choice"`
	BestEpoch int         `json:"best_epoch"` // -1 before the first evaluation
	BestAcc   float64     `json:"best_accuracy"`
	LossSum   float64     `json:"loss_sum"` // of the current epoch's steps
	AccSum    float64     `json:"acc_sum"`
	Steps     int         `json:"steps"`
}

const (
	trainFormat  = "pnas-train-checkpoint"
	trainVersion = 1
	trainKey     = "pnas.train"
	bestPrefix   = "best:"
)

// NewTrainer builds a trainer of the network of plan that takes candidate
// choice[l] at every layer, with weights drawn from cfg.Seed.
func NewTrainer(plan *space.Plan, choice []int, cfg TrainConfig) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if plan == nil {
		return nil, fmt.Errorf("search: train: no search space plan")
	}
	if err := checkChoice(plan, "train", choice); err != nil {
		return nil, err
	}
	s, err := New(plan, cfg.searchConfig(), nil)
	if err != nil {
		return nil, err
	}
	t := &Trainer{s: s, cfg: cfg, choice: slices.Clone(choice),
		st: trainState{Format: trainFormat, Version: trainVersion, Config: cfg, Choice: slices.Clone(choice), BestEpoch: -1}}
	if err := t.collectNames(); err != nil {
		s.Close()
		return nil, err
	}
	return t, nil
}

// collectNames lists the supernet parameters the network uses.
func (t *Trainer) collectNames() error {
	t.names = nil
	_, err := archnet.Build(t.s.plan, t.choice, "names", func(n string) []float32 {
		t.names = append(t.names, n)
		return t.s.params.get(n).w
	}, nil)
	return err
}

// Close releases the backend.
func (t *Trainer) Close() { t.s.Close() }

// Config returns the recipe.
func (t *Trainer) Config() TrainConfig { return t.cfg }

// Plan returns the plan of the network's space.
func (t *Trainer) Plan() *space.Plan { return t.s.plan }

// Choice returns the network's candidate per layer.
func (t *Trainer) Choice() []int { return slices.Clone(t.choice) }

// Position returns where the training stands (Epoch, Iter, WeightSteps).
func (t *Trainer) Position() Position { return t.s.pos }

// Best returns the epoch with the best held-out accuracy so far (-1 before
// the first epoch ended) and that accuracy.
func (t *Trainer) Best() (int, float64) { return t.st.BestEpoch, t.st.BestAcc }

// Weights returns copies of the network's weights by supernet name.
func (t *Trainer) Weights() map[string][]float32 {
	out := map[string][]float32{}
	for _, n := range t.names {
		out[n] = slices.Clone(t.s.params.get(n).w)
	}
	return out
}

// InitFrom copies the weights of m, a model of the same network (as
// Derive or archnet.Build name its parameters), into the trainer: every
// parameter must be present with the same shape. BN running statistics are
// copied too; the optimizer state starts empty.
func (t *Trainer) InitFrom(m *ir.Model) error {
	dst := map[*float32]bool{}
	for _, n := range t.names {
		dst[&t.s.params.get(n).w[0]] = true
	}
	built, err := archnet.Build(t.s.plan, t.choice, "init", func(n string) []float32 { return t.s.params.get(n).w }, nil)
	if err != nil {
		return fmt.Errorf("search: init: %w", err)
	}
	for _, key := range built.ParamNames() {
		bt := built.Params[key]
		if len(bt.Data) == 0 || !dst[&bt.Data[0]] {
			return fmt.Errorf("search: init: parameter %q does not map onto the network's weights", key)
		}
		src := m.Params[key]
		if src == nil {
			return fmt.Errorf("search: init: model %s: parameter %q: missing (not this network?)", m.Name, key)
		}
		if !slices.Equal(src.Shape, bt.Shape) || len(src.Data) != len(bt.Data) {
			return fmt.Errorf("search: init: model %s: parameter %q: expected shape %v, got %v", m.Name, key, bt.Shape, src.Shape)
		}
		copy(bt.Data, src.Data)
	}
	return nil
}

// TrainStepInfo reports one training step.
type TrainStepInfo struct {
	Position Position // after the step
	Loss     float64  // label-smoothed cross entropy of the batch
	Accuracy float64  // top-1 on the batch
	LR       float64
}

// TrainEpochInfo reports the end of an epoch.
type TrainEpochInfo struct {
	Position      Position   // after the epoch
	Epoch         int        // the epoch that ended
	Warmup        bool       // a learning-rate warm-up epoch
	TrainLoss     float64    // mean over the epoch's steps
	TrainAccuracy float64    // mean over the epoch's steps
	Held          EvalResult // on the held-out set, BN running statistics
	Best          bool       // the best held-out accuracy so far: these weights are kept
}

// TrainHooks are called by Trainer.Run; a non-nil error stops it and is returned.
type TrainHooks struct {
	Step  func(TrainStepInfo) error
	Epoch func(TrainEpochInfo) error
}

// ItersPerEpoch returns the steps of one epoch over d, or an error naming
// what does not fit.
func (t *Trainer) ItersPerEpoch(d Data) (int, error) {
	if d.Train == nil || d.Held == nil {
		return 0, fmt.Errorf("search: train: expected training and held-out data")
	}
	in := t.s.plan.Stem.In
	for _, ds := range []*data.Dataset{d.Train, d.Held} {
		if ds.C != in.C || ds.H != in.H || ds.W != in.W {
			return 0, fmt.Errorf("search: train: data %s: expected %dx%dx%d images (channels x height x width), got %dx%dx%d",
				ds.Name, in.C, in.H, in.W, ds.C, ds.H, ds.W)
		}
		if len(ds.Classes) != t.s.plan.Classes {
			return 0, fmt.Errorf("search: train: data %s: expected %d classes, got %d", ds.Name, t.s.plan.Classes, len(ds.Classes))
		}
	}
	if err := d.Norm.Check(in.C); err != nil {
		return 0, err
	}
	n := d.Train.Len() / t.cfg.BatchSize
	if n == 0 {
		return 0, fmt.Errorf("search: train: data %s: expected at least BatchSize=%d training images, got %d", d.Train.Name, t.cfg.BatchSize, d.Train.Len())
	}
	if d.Held.Len() < 2 {
		return 0, fmt.Errorf("search: train: data %s: expected at least 2 held-out images, got %d", d.Held.Name, d.Held.Len())
	}
	return n, nil
}

// Run trains from the trainer's position to the last epoch. d.Aug is
// ignored: the recipe's Pad and Flip (and Erase) apply. Each epoch visits
// the training set in a fresh order (a function of Seed and the epoch) and
// ends with an evaluation on d.Held, the held-out part of the training
// split, with BN running statistics; the weights of the best epoch are
// kept (Finish returns them). Run returns when done, when a hook fails or
// when ctx is cancelled; Save then captures a state from which Run
// resumes as if never stopped.
func (t *Trainer) Run(ctx context.Context, d Data, h TrainHooks) error {
	iters, err := t.ItersPerEpoch(d)
	if err != nil {
		return err
	}
	s, c := t.s, &t.cfg
	var aug *data.Augment
	if c.Pad > 0 || c.Flip {
		aug = &data.Augment{Pad: c.Pad, Flip: c.Flip}
	}
	for s.pos.Epoch < c.Epochs {
		order := permutation(d.Train.Len(), uint64(c.Seed), streamOrder+uint64(s.pos.Epoch))
		for s.pos.Iter < iters {
			if err := ctx.Err(); err != nil {
				return err
			}
			idx := order[s.pos.Iter*c.BatchSize : (s.pos.Iter+1)*c.BatchSize]
			var labels []int
			t.xb, labels = d.Train.Batch(idx, d.Norm, aug, s.aug, t.xb)
			if c.Erase > 0 {
				erase(t.xb, len(labels), d.Train.C, d.Train.H, d.Train.W, c.Erase, s.aug)
			}
			lr := c.LearningRate(s.pos.Epoch, s.pos.Iter, iters)
			st, err := t.step(t.xb, labels, lr)
			if err != nil {
				return err
			}
			s.pos.Iter++
			s.pos.WeightSteps++
			t.st.LossSum += st.Loss
			t.st.AccSum += st.Accuracy
			t.st.Steps++
			if h.Step != nil {
				if err := h.Step(TrainStepInfo{Position: s.pos, Loss: st.Loss, Accuracy: st.Accuracy, LR: lr}); err != nil {
					return err
				}
			}
		}
		ei := TrainEpochInfo{Epoch: s.pos.Epoch, Warmup: s.pos.Epoch < c.WarmupEpochs}
		if t.st.Steps > 0 {
			ei.TrainLoss, ei.TrainAccuracy = t.st.LossSum/float64(t.st.Steps), t.st.AccSum/float64(t.st.Steps)
		}
		ev, err := s.Evaluate(d.Held, d.Norm, t.choice, true)
		if err != nil {
			return err
		}
		ei.Held = ev
		if t.st.BestEpoch < 0 || ev.Accuracy > t.st.BestAcc {
			t.st.BestEpoch, t.st.BestAcc = s.pos.Epoch, ev.Accuracy
			t.best = t.Weights()
			ei.Best = true
		}
		t.st.LossSum, t.st.AccSum, t.st.Steps = 0, 0, 0
		s.pos.Epoch++
		s.pos.Iter = 0
		ei.Position = s.pos
		if h.Epoch != nil {
			if err := h.Epoch(ei); err != nil {
				return err
			}
		}
	}
	return nil
}

// step is one SGD step of the fixed network with the recipe's weight decay.
func (t *Trainer) step(x []float32, labels []int, lr float64) (StepStats, error) {
	s := t.s
	if err := s.validateBatch(x, labels); err != nil {
		return StepStats{}, err
	}
	defer s.stepMemory()()
	out, err := s.runNet(x, labels, netRun{smoothing: t.cfg.LabelSmoothing, weightGrads: true, choice: t.choice})
	if err != nil {
		return StepStats{}, err
	}
	s.updateRunningStats(out.bn, out.res)
	for _, pg := range out.grads {
		wd := 0.0
		if t.cfg.Decays(pg.p.name) {
			wd = t.cfg.WeightDecay
		}
		s.sgdDecay(pg.p, pg.g, lr, wd)
	}
	return StepStats{Loss: out.loss, Accuracy: accuracy(out.logits, labels, s.plan.Classes), LR: lr, Choice: t.choice}, nil
}

// erase applies random erasing to each of the n images of x (NCHW) with
// probability p: a rectangle of 2% to 1/3 of the image, aspect ratio
// log-uniform in [0.3, 1/0.3], at a uniform position, set to 0 (the
// normalized mean) in every channel; up to 10 draws for a rectangle that
// fits, else the image is kept.
func erase(x []float32, n, c, h, w int, p float64, rng *rand.Rand) {
	plane := h * w
	for i := range n {
		if rng.Float64() >= p {
			continue
		}
		for range 10 {
			area := float64(plane) * (0.02 + rng.Float64()*(1.0/3-0.02))
			ratio := math.Exp(math.Log(0.3) + rng.Float64()*(math.Log(1/0.3)-math.Log(0.3)))
			eh := int(math.Round(math.Sqrt(area * ratio)))
			ew := int(math.Round(math.Sqrt(area / ratio)))
			if eh < 1 || ew < 1 || eh > h || ew > w {
				continue
			}
			y0, x0 := rng.IntN(h-eh+1), rng.IntN(w-ew+1)
			for ch := range c {
				img := x[(i*c+ch)*plane : (i*c+ch+1)*plane]
				for y := y0; y < y0+eh; y++ {
					clear(img[y*w+x0 : y*w+x0+ew])
				}
			}
			break
		}
	}
}

// Finish returns the trained network: the weights of the best held-out
// epoch (the last ones if no epoch has ended), with BN statistics
// re-estimated over the first BNImages images of d.Train (no augmentation),
// and its accuracy on d.Held with those statistics. opt names and labels
// the model; its search metadata records the space, candidates and choices
// so that the model can be trained again.
func (t *Trainer) Finish(d Data, opt DeriveOptions) (*ir.Model, EvalResult, error) {
	s := t.s
	for n, w := range t.best {
		copy(s.params.get(n).w, w)
	}
	if t.cfg.BNImages > 0 {
		if err := s.RecalibrateBN(d.Train, d.Norm, t.choice, t.cfg.BNImages); err != nil {
			return nil, EvalResult{}, err
		}
	}
	ev, err := s.Evaluate(d.Held, d.Norm, t.choice, true)
	if err != nil {
		return nil, EvalResult{}, err
	}
	if opt.Name == "" {
		opt.Name = s.plan.Space.Name + "-trained"
	}
	m, err := s.DeriveChoice(t.choice, opt)
	if err != nil {
		return nil, EvalResult{}, err
	}
	m.Producer = "pnas train"
	info := m.Metadata.Search
	info.Seed, info.GateMode, info.Alpha = t.cfg.Seed, "", nil
	return m, ev, nil
}

// Save writes the trainer's whole state to path atomically: the
// searcher's checkpoint (weights, BN statistics, momentum, RNGs,
// position) plus the recipe, the choice, the running sums of the current
// epoch and the best epoch's weights. LoadTrainer resumes from it
// bit-identically.
func (t *Trainer) Save(path string) error {
	b, err := t.s.encodeCheckpoint()
	if err != nil {
		return err
	}
	tensors, meta, err := ir.DecodeSafetensors(b)
	if err != nil {
		return fmt.Errorf("search: train checkpoint: %w", err)
	}
	st, err := json.Marshal(t.st)
	if err != nil {
		return fmt.Errorf("search: train checkpoint: %w", err)
	}
	meta[trainKey] = string(st)
	for n, w := range t.best {
		tensors[bestPrefix+n] = &ir.Tensor{Shape: t.s.params.get(n).shape, Data: w}
	}
	var buf bytes.Buffer
	if err := ir.EncodeSafetensors(&buf, tensors, meta); err != nil {
		return fmt.Errorf("search: train checkpoint: %w", err)
	}
	return atomicfile.Write(path, buf.Bytes())
}

// LoadTrainer restores a trainer saved by Save, running on rt's backend
// and parallelism (which do not change the results on the same backend).
func LoadTrainer(path string, rt Placement) (*Trainer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := decodeTrainer(b, rt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

func decodeTrainer(b []byte, rt Placement) (*Trainer, error) {
	tensors, meta, err := ir.DecodeSafetensors(b)
	if err != nil {
		return nil, fmt.Errorf("train checkpoint: %w", err)
	}
	raw, ok := meta[trainKey]
	if !ok {
		return nil, fmt.Errorf("train checkpoint: metadata %q: missing (not a pnas train checkpoint)", trainKey)
	}
	var st trainState
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("train checkpoint: state: %w", err)
	}
	if st.Format != trainFormat || st.Version != trainVersion {
		return nil, fmt.Errorf("train checkpoint: format: expected %s version %d, got %q version %d", trainFormat, trainVersion, st.Format, st.Version)
	}
	st.Config.Backend, st.Config.Parallelism = rt.Backend, rt.Parallelism
	if err := st.Config.Validate(); err != nil {
		return nil, fmt.Errorf("train checkpoint: %w", err)
	}
	s, err := decodeCheckpoint(b, nil, &rt)
	if err != nil {
		return nil, err
	}
	if err := checkChoice(s.plan, "train checkpoint", st.Choice); err != nil {
		s.Close()
		return nil, err
	}
	t := &Trainer{s: s, cfg: st.Config, choice: st.Choice, st: st}
	if err := t.collectNames(); err != nil {
		s.Close()
		return nil, err
	}
	if st.BestEpoch >= 0 {
		t.best = map[string][]float32{}
		for _, n := range t.names {
			bt, ok := tensors[bestPrefix+n]
			if !ok || !slices.Equal(bt.Shape, s.params.get(n).shape) {
				s.Close()
				return nil, fmt.Errorf("train checkpoint: tensor %q: missing or misshapen", bestPrefix+n)
			}
			t.best[n] = bt.Data
		}
	}
	return t, nil
}

// ModelArch returns the plan and choice of a model that records its
// architecture (search metadata, as pnas search, pnas sample and pnas
// train write it). sp is the search space; nil opens the space the model
// names (a built-in space). The plan's candidates are the model's.
func ModelArch(m *ir.Model, sp *space.Space) (*space.Plan, []int, error) {
	info := m.Metadata.Search
	if info == nil || len(info.Choices) == 0 {
		return nil, nil, fmt.Errorf("model %s: metadata.search.choices: missing (the model must come from pnas search, pnas sample or pnas train)", m.Name)
	}
	if sp == nil {
		var err error
		if sp, err = space.Open(info.Space); err != nil {
			return nil, nil, fmt.Errorf("model %s: space %q: %w (give the space file)", m.Name, info.Space, err)
		}
	} else if info.Space != "" && sp.Name != info.Space {
		return nil, nil, fmt.Errorf("model %s: space: the model was built in space %q, got %q", m.Name, info.Space, sp.Name)
	}
	if len(info.Candidates) > 0 {
		sp = sp.Clone()
		sp.Candidates = nil
		for _, a := range info.Candidates {
			name := space.ZeroName
			if a != space.ZeroName {
				c, err := archnet.ParseAnnotation(a)
				if err != nil {
					return nil, nil, fmt.Errorf("model %s: metadata.search.candidates: %w", m.Name, err)
				}
				name = c.Name()
			}
			sp.Candidates = append(sp.Candidates, name)
		}
	}
	plan, err := sp.Plan()
	if err != nil {
		return nil, nil, fmt.Errorf("model %s: %w", m.Name, err)
	}
	if len(info.Choices) != len(plan.Layers) {
		return nil, nil, fmt.Errorf("model %s: metadata.search.choices: expected %d layers for space %s, got %d", m.Name, len(plan.Layers), sp.Name, len(info.Choices))
	}
	choice := make([]int, len(plan.Layers))
	for l, layer := range plan.Layers {
		choice[l] = -1
		for j, c := range layer.Candidates {
			if archnet.Annotation(c) == info.Choices[l] {
				choice[l] = j
			}
		}
		if choice[l] < 0 {
			return nil, nil, fmt.Errorf("model %s: metadata.search.choices[%d]: %q is not a candidate of layer %s", m.Name, l, info.Choices[l], archnet.LayerPrefix(layer))
		}
	}
	return plan, choice, nil
}
