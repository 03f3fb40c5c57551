package search

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/pnasml/pnas/search/space"
)

// RNG stream identifiers (second PCG seed word) derived from Config.Seed.
const (
	streamInit   = 0x696e6974 // "init": weights and alpha
	streamSample = 0x70617468 // "path": path and pair sampling
	streamAug    = 0x61756721 // "aug!": data augmentation
	streamOrder  = 0x6f726472 // "ordr": data order (mixed with the epoch)
	streamHeld   = 0x68656c64 // "held": held-out order (mixed with its epoch)
)

// Searcher is the state of one architecture search.
type Searcher struct {
	cfg     Config
	plan    *space.Plan
	lat     *LatencyModel // nil when no table was given
	lossFn  LatencyLoss
	backend backends.Backend
	dtype   dtypes.DType // graph precision: float32 (float64 in gradient tests)
	params  *paramSet

	alpha        [][]float64 // [layer][candidate] architecture parameters
	adamM, adamV [][]float64 // Adam moments of alpha
	adamT        []int64     // Adam step count per layer (PyTorch keeps one per tensor)

	sampleSrc *rand.PCG
	sample    *rand.Rand
	augSrc    *rand.PCG
	aug       *rand.Rand

	pos Position
}

// Position locates a search in its schedule.
type Position struct {
	Epoch       int   // global epoch: warm-up epochs first, then search epochs
	Iter        int   // weight steps done in the current epoch
	WeightSteps int64 // weight steps done in total
	ArchSteps   int64 // architecture steps done in total
	HeldEpoch   int   // passes over the held-out set started
	HeldIter    int   // held-out batches used in the current pass
}

// New builds a searcher: it validates cfg, resolves the latency table
// (which may be nil only when cfg.LatencyLoss is LossNone) and initializes
// weights and alpha from cfg.Seed.
func New(plan *space.Plan, cfg Config, table LatencyTable) (*Searcher, error) {
	if plan == nil {
		return nil, fmt.Errorf("search: no search space plan")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Searcher{cfg: cfg, plan: plan, lossFn: cfg.LatencyLossFn(), dtype: dtypes.Float32}
	if table != nil {
		m, err := NewLatencyModel(plan, table)
		if err != nil {
			return nil, err
		}
		s.lat = m
	} else if cfg.LatencyLoss != LossNone {
		return nil, fmt.Errorf("search: latency loss %q needs a latency table, got none", cfg.LatencyLoss)
	}
	be, err := newBackend(cfg.Parallelism)
	if err != nil {
		return nil, err
	}
	s.backend = be
	seed := uint64(cfg.Seed)
	initRng := rand.New(rand.NewPCG(seed, streamInit))
	s.params = newSupernetParams(plan, initRng)
	for _, l := range plan.Layers {
		k := len(l.Candidates)
		a := make([]float64, k)
		for j := range a {
			a[j] = initRng.NormFloat64() * cfg.AlphaInitStd
		}
		s.alpha = append(s.alpha, a)
		s.adamM = append(s.adamM, make([]float64, k))
		s.adamV = append(s.adamV, make([]float64, k))
	}
	s.adamT = make([]int64, len(plan.Layers))
	s.sampleSrc = rand.NewPCG(seed, streamSample)
	s.sample = rand.New(s.sampleSrc)
	s.augSrc = rand.NewPCG(seed, streamAug)
	s.aug = rand.New(s.augSrc)
	return s, nil
}

// newBackend returns a simplego backend that runs a graph's ops one at a
// time (each op may still use several workers). simplego's default runs
// independent ops concurrently as worker tasks, and concurrent DotGenerals
// then each wait for workers that the others hold: a deadlock.
func newBackend(parallelism int) (backends.Backend, error) {
	spec := "ops_sequential"
	if parallelism > 0 {
		spec += fmt.Sprintf(",parallelism=%d", parallelism)
	}
	return simplego.New(spec)
}

// Close releases the GoMLX backend.
func (s *Searcher) Close() {
	if s.backend != nil {
		s.backend.Finalize()
		s.backend = nil
	}
}

// Config returns the searcher's configuration.
func (s *Searcher) Config() Config { return s.cfg }

// Plan returns the search space plan.
func (s *Searcher) Plan() *space.Plan { return s.plan }

// Latency returns the resolved latency model, or nil.
func (s *Searcher) Latency() *LatencyModel { return s.lat }

// Position returns where the search is in its schedule.
func (s *Searcher) Position() Position { return s.pos }

// Alpha returns a copy of the architecture parameters [layer][candidate],
// candidates in the order of plan.Layers[l].Candidates.
func (s *Searcher) Alpha() [][]float64 { return clone2(s.alpha) }

// Probs returns softmax(alpha) per layer.
func (s *Searcher) Probs() [][]float64 {
	out := make([][]float64, len(s.alpha))
	for l, a := range s.alpha {
		out[l] = softmax(a)
	}
	return out
}

// Weights returns a copy of every supernet tensor (weights and BN running
// statistics) keyed by name, e.g. "s2.l0.k5e6.dw.conv.weight".
func (s *Searcher) Weights() map[string][]float32 {
	out := make(map[string][]float32, len(s.params.list))
	for _, p := range s.params.list {
		out[p.name] = append([]float32(nil), p.w...)
	}
	return out
}

func clone2(a [][]float64) [][]float64 {
	out := make([][]float64, len(a))
	for i, r := range a {
		out[i] = append([]float64(nil), r...)
	}
	return out
}

func softmax(a []float64) []float64 {
	mx := math.Inf(-1)
	for _, v := range a {
		mx = math.Max(mx, v)
	}
	out := make([]float64, len(a))
	var sum float64
	for i, v := range a {
		out[i] = math.Exp(v - mx)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// draw samples an index from the distribution p.
func draw(r *rand.Rand, p []float64) int {
	u := r.Float64()
	var acc float64
	for i, v := range p {
		acc += v
		if u < acc {
			return i
		}
	}
	return len(p) - 1
}

// samplePath draws one candidate per layer: uniformly, or from softmax(alpha).
func (s *Searcher) samplePath(uniform bool) []int {
	choice := make([]int, len(s.plan.Layers))
	for l, layer := range s.plan.Layers {
		if uniform {
			choice[l] = s.sample.IntN(len(layer.Candidates))
		} else {
			choice[l] = draw(s.sample, softmax(s.alpha[l]))
		}
	}
	return choice
}

// Argmax returns the most probable candidate of every layer.
func (s *Searcher) Argmax() []int {
	out := make([]int, len(s.alpha))
	for l, a := range s.alpha {
		best := 0
		for j, v := range a {
			if v > a[best] {
				best = j
			}
		}
		out[l] = best
	}
	return out
}

// ChoiceNames returns candidate names for a choice vector.
func (s *Searcher) ChoiceNames(choice []int) []string {
	out := make([]string, len(choice))
	for l, j := range choice {
		out[l] = s.plan.Layers[l].Candidates[j].Name()
	}
	return out
}

// StepStats reports one weight step.
type StepStats struct {
	Loss     float64 // training loss (label-smoothed cross entropy)
	Accuracy float64 // top-1 on the batch
	LR       float64 // learning rate used
	Choice   []int   // sampled path (nil in all mode)
}

// WeightStep trains the weights on one batch x (NCHW float32) with labels:
// it samples a path (uniformly when uniform is set, else from
// softmax(alpha)), runs that path's graph and applies SGD with learning
// rate lr to the weights the path used; the other candidates keep their
// weights and momentum. In GateAll mode without uniform every candidate
// runs, weighted by softmax(alpha), and all are updated.
func (s *Searcher) WeightStep(x []float32, labels []int, lr float64, uniform bool) (StepStats, error) {
	if err := s.validateBatch(x, labels); err != nil {
		return StepStats{}, err
	}
	r := netRun{smoothing: s.cfg.LabelSmoothing, weightGrads: true}
	if s.cfg.GateMode == GateAll && !uniform {
		r.coefs = s.Probs()
	} else {
		r.choice = s.samplePath(uniform)
	}
	out, err := s.runNet(x, labels, r)
	if err != nil {
		return StepStats{}, err
	}
	s.updateRunningStats(out.bn, out.res)
	for _, pg := range out.grads {
		s.sgd(pg.p, pg.g, lr)
	}
	return StepStats{
		Loss:     out.loss,
		Accuracy: accuracy(out.logits, labels, s.plan.Classes),
		LR:       lr,
		Choice:   r.choice,
	}, nil
}

// sgd applies PyTorch's SGD (weight decay, momentum, Nesterov) in float32.
func (s *Searcher) sgd(p *param, g []float64, lr float64) {
	wd, mom, lr32 := float32(s.cfg.WeightDecay), float32(s.cfg.Momentum), float32(lr)
	first := p.buf == nil
	if mom != 0 && first {
		p.buf = make([]float32, len(p.w))
	}
	for i := range p.w {
		d := float32(g[i]) + wd*p.w[i]
		if mom != 0 {
			if first {
				p.buf[i] = d
			} else {
				p.buf[i] = mom*p.buf[i] + d
			}
			if s.cfg.Nesterov {
				d += mom * p.buf[i]
			} else {
				d = p.buf[i]
			}
		}
		p.w[i] -= lr32 * d
	}
}

func f32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// accuracy returns the top-1 fraction of logits [N,K] matching labels.
func accuracy(logits []float64, labels []int, k int) float64 {
	correct := 0
	for n, l := range labels {
		row := logits[n*k : (n+1)*k]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		if best == l {
			correct++
		}
	}
	return float64(correct) / float64(len(labels))
}
