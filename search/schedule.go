package search

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/pnasml/pnas/data"
)

// Data is what Run trains on.
type Data struct {
	Train *data.Dataset      // weight steps
	Held  *data.Dataset      // architecture steps and per-epoch evaluation
	Norm  data.Normalization // input normalization
	Aug   *data.Augment      // training augmentation; nil for none
}

// StepInfo reports one weight step and the architecture step after it.
type StepInfo struct {
	Position Position   // after the step
	Warmup   bool       // a warm-up step
	Train    bool       // a step of the train epochs (the argmax network alone)
	Weight   StepStats  // the weight step
	Arch     *ArchStats // the architecture step, if one ran
}

// EpochInfo reports the end of an epoch.
type EpochInfo struct {
	Position        Position    // after the epoch
	Epoch           int         // the epoch that ended
	Warmup          bool        // a warm-up epoch
	Train           bool        // a train epoch
	Eval            EvalResult  // argmax network on the held-out set, BN in train mode
	Argmax          []string    // argmax candidate per layer
	ArgmaxLatency   float64     // its latency (microseconds; 0 without a table)
	ArgmaxMACs      int64       // its multiply-accumulates per image
	ExpectedLatency float64     // E[LAT] under softmax(alpha) (0 without a table)
	Entropy         []float64   // entropy of softmax(alpha) per layer, in nats
	Probs           [][]float64 // softmax(alpha) per layer
}

// Hooks are called by Run; a non-nil error stops the run and is returned.
type Hooks struct {
	Step  func(StepInfo) error
	Epoch func(EpochInfo) error
}

// Schedule sizes for a data set.
func (s *Searcher) itersPerEpoch(d Data) (int, error) {
	if d.Train == nil || d.Held == nil {
		return 0, fmt.Errorf("search: run: expected training and held-out data")
	}
	in := s.plan.Stem.In
	for _, ds := range []*data.Dataset{d.Train, d.Held} {
		if ds.C != in.C || ds.H != in.H || ds.W != in.W {
			return 0, fmt.Errorf("search: data %s: expected %dx%dx%d images (channels x height x width) for space %s, got %dx%dx%d",
				ds.Name, in.C, in.H, in.W, s.plan.Space.Name, ds.C, ds.H, ds.W)
		}
		if len(ds.Classes) != s.plan.Classes {
			return 0, fmt.Errorf("search: data %s: expected %d classes for space %s, got %d", ds.Name, s.plan.Classes, s.plan.Space.Name, len(ds.Classes))
		}
	}
	if err := d.Norm.Check(in.C); err != nil {
		return 0, err
	}
	n := d.Train.Len() / s.cfg.BatchSize
	if n == 0 {
		return 0, fmt.Errorf("search: data %s: expected at least BatchSize=%d training images, got %d", d.Train.Name, s.cfg.BatchSize, d.Train.Len())
	}
	if d.Held.Len() < s.cfg.ArchBatchSize {
		return 0, fmt.Errorf("search: data %s: expected at least ArchBatchSize=%d held-out images, got %d", d.Held.Name, s.cfg.ArchBatchSize, d.Held.Len())
	}
	return n, nil
}

// LearningRate returns the weight learning rate of step iter of epoch (global
// epoch numbering): a per-iteration cosine from WarmupLR to 0 over the
// warm-up epochs, then from LR to 0 over the search epochs, then from
// TrainLR to 0 over the train epochs.
func (c *Config) LearningRate(epoch, iter, itersPerEpoch int) float64 {
	lr0, e, total := c.LR, epoch-c.WarmupEpochs, c.SearchEpochs
	switch {
	case epoch < c.WarmupEpochs:
		lr0, e, total = c.WarmupLR, epoch, c.WarmupEpochs
	case epoch >= c.WarmupEpochs+c.SearchEpochs:
		lr0, e, total = c.TrainLR, epoch-c.WarmupEpochs-c.SearchEpochs, c.TrainEpochs
	}
	t := float64(e*itersPerEpoch + iter)
	return 0.5 * lr0 * (1 + math.Cos(math.Pi*t/float64(total*itersPerEpoch)))
}

// Run continues the schedule from the searcher's position: the remaining
// warm-up epochs (weight steps on uniformly sampled paths), then the
// search epochs, each weight step followed by an architecture step every
// Config.ArchEvery steps (none in the first search epoch when
// Config.ArchSkipEpoch0 is set), then the train epochs: weight steps on
// the argmax network alone, whose weights it inherits from the supernet
// (alpha no longer changes, so neither does the network). Each epoch visits the training set in a
// fresh order (a function of Config.Seed and the epoch) and ends with an
// evaluation of the argmax network on the held-out set. Run returns when
// the schedule is done, a hook fails, or ctx is cancelled; Save then
// captures a state from which Run resumes as if never stopped.
func (s *Searcher) Run(ctx context.Context, d Data, h Hooks) error {
	iters, err := s.itersPerEpoch(d)
	if err != nil {
		return err
	}
	c := &s.cfg
	total := c.WarmupEpochs + c.SearchEpochs + c.TrainEpochs
	var xb, hb []float32
	for s.pos.Epoch < total {
		warm := s.pos.Epoch < c.WarmupEpochs
		train := s.pos.Epoch >= c.WarmupEpochs+c.SearchEpochs
		var fixed []int
		if train {
			fixed = s.Chosen()
		}
		order := permutation(d.Train.Len(), uint64(c.Seed), streamOrder+uint64(s.pos.Epoch))
		for s.pos.Iter < iters {
			if err := ctx.Err(); err != nil {
				return err
			}
			idx := order[s.pos.Iter*c.BatchSize : (s.pos.Iter+1)*c.BatchSize]
			var labels []int
			xb, labels = d.Train.Batch(idx, d.Norm, d.Aug, s.aug, xb)
			lr := c.LearningRate(s.pos.Epoch, s.pos.Iter, iters)
			var ws StepStats
			if train {
				ws, err = s.TrainStep(xb, labels, lr, fixed)
			} else {
				ws, err = s.WeightStep(xb, labels, lr, warm)
			}
			if err != nil {
				return err
			}
			s.pos.Iter++
			s.pos.WeightSteps++
			info := StepInfo{Warmup: warm, Train: train, Weight: ws}
			searchEpoch := s.pos.Epoch - c.WarmupEpochs
			if !warm && !train && (searchEpoch > 0 || !c.ArchSkipEpoch0) && s.pos.Iter%c.ArchEvery == 0 {
				var hl []int
				hb, hl = s.heldBatch(d, hb)
				as, err := s.ArchStep(hb, hl)
				if err != nil {
					return err
				}
				info.Arch = &as
			}
			info.Position = s.pos
			if h.Step != nil {
				if err := h.Step(info); err != nil {
					return err
				}
			}
		}
		ended := s.pos.Epoch
		s.pos.Epoch++
		s.pos.Iter = 0
		if h.Epoch != nil {
			ei, err := s.epochInfo(d, ended, warm)
			if err != nil {
				return err
			}
			ei.Train = train
			ei.Position = s.pos
			if err := h.Epoch(ei); err != nil {
				return err
			}
		}
	}
	return nil
}

// heldBatch returns the next held-out batch, cycling through the held-out
// set in a fresh order on every pass.
func (s *Searcher) heldBatch(d Data, dst []float32) ([]float32, []int) {
	bs := s.cfg.ArchBatchSize
	per := d.Held.Len() / bs
	if s.pos.HeldIter >= per {
		s.pos.HeldEpoch++
		s.pos.HeldIter = 0
	}
	order := permutation(d.Held.Len(), uint64(s.cfg.Seed), streamHeld+uint64(s.pos.HeldEpoch))
	idx := order[s.pos.HeldIter*bs : (s.pos.HeldIter+1)*bs]
	s.pos.HeldIter++
	return d.Held.Batch(idx, d.Norm, nil, nil, dst)
}

func (s *Searcher) epochInfo(d Data, epoch int, warm bool) (EpochInfo, error) {
	arg := s.Argmax()
	ev, err := s.Evaluate(d.Held, d.Norm, arg, false)
	if err != nil {
		return EpochInfo{}, err
	}
	ei := EpochInfo{Epoch: epoch, Warmup: warm, Eval: ev, Argmax: s.ChoiceNames(arg), ArgmaxMACs: ArchMACs(s.plan, arg), Probs: s.Probs()}
	if s.lat != nil {
		ei.ArgmaxLatency = s.lat.Of(arg)
		ei.ExpectedLatency = s.lat.Expected(ei.Probs)
	}
	for _, p := range ei.Probs {
		var h float64
		for _, v := range p {
			if v > 0 {
				h -= v * math.Log(v)
			}
		}
		ei.Entropy = append(ei.Entropy, h)
	}
	return ei, nil
}

// EvalResult is an evaluation over a data set.
type EvalResult struct {
	N        int     // images evaluated
	Loss     float64 // mean plain cross entropy
	Accuracy float64 // top-1 fraction
}

// Evaluate runs the network choosing candidate choice[l] at every layer
// over ds in batches of ArchBatchSize (a last partial batch of at least 2
// images included). BN uses batch statistics (train mode, as ProxylessNAS
// validates during search) unless runningStats is set. Nothing is updated.
func (s *Searcher) Evaluate(ds *data.Dataset, norm data.Normalization, choice []int, runningStats bool) (EvalResult, error) {
	if err := checkChoice(s.plan, "evaluate", choice); err != nil {
		return EvalResult{}, err
	}
	defer s.stepMemory()()
	bs := s.cfg.ArchBatchSize
	var r EvalResult
	var buf []float32
	var lossSum float64
	correct := 0.0
	for start := 0; start < ds.Len(); start += bs {
		end := min(start+bs, ds.Len())
		if end-start < 2 {
			break
		}
		idx := make([]int, end-start)
		for i := range idx {
			idx[i] = start + i
		}
		var labels []int
		buf, labels = ds.Batch(idx, norm, nil, nil, buf)
		out, err := s.runNet(buf, labels, netRun{choice: choice, bnInference: runningStats})
		if err != nil {
			return EvalResult{}, err
		}
		n := len(labels)
		lossSum += out.loss * float64(n)
		correct += accuracy(out.logits, labels, s.plan.Classes) * float64(n)
		r.N += n
	}
	if r.N > 0 {
		r.Loss = lossSum / float64(r.N)
		r.Accuracy = correct / float64(r.N)
	}
	return r, nil
}

// permutation returns a permutation of 0..n-1 drawn by Fisher-Yates from a
// PCG seeded with (seed, stream), with rejection sampling on the raw
// output so the order depends on nothing but its arguments.
func permutation(n int, seed, stream uint64) []int {
	src := rand.NewPCG(seed, stream)
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		m := uint64(i + 1)
		limit := math.MaxUint64 - math.MaxUint64%m
		v := src.Uint64()
		for v >= limit {
			v = src.Uint64()
		}
		j := int(v % m)
		p[i], p[j] = p[j], p[i]
	}
	return p
}
