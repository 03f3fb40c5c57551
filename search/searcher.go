package search

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
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
	lossFn  LossFunc
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
	rl  rlState // REINFORCE baseline

	mem memoryState

	seqBackend backends.Backend // created on first use (sequentialBackend)

	// onCompile, when set (tests), sees every graph before it is compiled;
	// an error stops the run and is returned.
	onCompile func(g *graph.Graph, outputs []*graph.Node) error
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
	s := &Searcher{cfg: cfg, plan: plan, lossFn: cfg.LossFunc(), dtype: dtypes.Float32}
	if table != nil {
		m, err := NewLatencyModel(plan, table)
		if err != nil {
			return nil, err
		}
		s.lat = m
	} else if cfg.LatencyLoss != LossNone {
		return nil, fmt.Errorf("search: latency loss %q needs a latency table, got none", cfg.LatencyLoss)
	} else if cfg.Derive == DeriveBudget {
		return nil, fmt.Errorf("search: derivation %q needs a latency table, got none", DeriveBudget)
	}
	be, err := openBackend(cfg)
	if err != nil {
		return nil, err
	}
	s.backend = be
	seed := uint64(cfg.Seed)
	initRng := rand.New(rand.NewPCG(seed, streamInit))
	s.params = newSupernetParams(plan, initRng, cfg.Sharing == ShareNested)
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

// DefaultMemoryHeadroom is Config.MemoryHeadroom's value when it is 0.
const DefaultMemoryHeadroom = 1.5

// memorySlack is added to every graph's memory budget: the kernels' own
// buffers (the packing of large matrix products), the Go runtime, the batch.
const memorySlack = 64 << 20

// stepMemory brackets a step and returns the function ending it.
//
// simplego returns a graph's buffers to sync.Pools keyed by length, which
// keep them until two collections have passed. Pooled buffers count as
// live heap, so the collector's target (GOGC) doubles over them, and the
// buffers of lengths the next paths do not use pile up until a collection
// finally runs: the heap grew with the number of distinct shapes (with the
// candidates) and with the steps. A lower GOGC bounds that but collects
// dozens of times per step; every collection empties the pools, so the
// next buffers are allocated, zeroed and faulted in afresh, and steps were
// up to half slower.
//
// Instead each graph runs under a soft memory limit (debug.SetMemoryLimit):
// the live heap at the start of the step plus Config.MemoryHeadroom times
// the largest planned working set so far (gx.PlanMemory, which does not
// depend on the candidates' kernel sizes) plus memorySlack, with GOGC off
// during the step, so the collector runs only when the heap reaches the
// budget. Ending the step restores the process's GOGC and limit and
// collects twice, which empties the pools, so nothing a step allocated
// outlives it. A tighter limit set by the process wins.
//
// The library never does this on its own: a program opts in with
// ManageProcessMemory, since the GC settings and the memory limit belong
// to the whole process.
func (s *Searcher) stepMemory() (end func()) {
	if !s.mem.managed || !s.pooled() {
		return func() {}
	}
	if !s.mem.primed {
		runtime.GC()
		s.mem.primed = true
	}
	s.mem.processLimit = debug.SetMemoryLimit(-1)
	s.mem.base = liveHeap()
	s.mem.inStep = true
	gcPercent := -2
	if s.cfg.MemoryHeadroom >= 0 {
		// The budget is the only trigger: GOGC would collect at twice the
		// live heap, far below the budget while a small graph (the full_v2
		// recomputation) runs. Until the step's first graph is planned,
		// the budget of the largest graph so far holds.
		s.budget(0)
		gcPercent = debug.SetGCPercent(-1)
	}
	return func() {
		s.mem.inStep = false
		if gcPercent != -2 {
			debug.SetGCPercent(gcPercent)
		}
		debug.SetMemoryLimit(s.mem.processLimit)
		runtime.GC()
		runtime.GC()
	}
}

// pooled reports whether the backend is simplego, whose buffer pools
// stepMemory manages.
func (s *Searcher) pooled() bool {
	_, ok := s.backend.(*simplego.Backend)
	return ok
}

// ManageProcessMemory lets the searcher run each step under a memory
// budget of its own (see Config.MemoryHeadroom): during a step it turns the
// process's GC off, sets the process's soft memory limit, and collects
// twice when the step ends, restoring the process's GOGC and limit. This
// is for programs that run a search on GoMLX's simplego backend ("go") and
// nothing else that is sensitive to the collector at the same time (the
// pnas command does it); simplego's buffer pools otherwise make the heap
// grow with the number of distinct shapes. It has no effect on any other
// backend; pnas's own backend owns its buffers and needs no budget.
func (s *Searcher) ManageProcessMemory() { s.mem.managed = true }

// memoryState is the searcher's memory budgeting (see stepMemory).
type memoryState struct {
	managed      bool  // ManageProcessMemory was called
	primed       bool  // a collection ran before the first step
	inStep       bool  // a step is running
	base         int64 // live heap at the start of the step
	peak         int64 // largest planned working set of any graph so far
	processLimit int64 // the process's memory limit, restored after the step
	lastLimit    int64 // the limit set for the last graph (tests)
}

// budget sets the memory limit for a graph whose planned working set is
// peak bytes. Every graph gets the budget of the largest graph planned so
// far: the search's peak is set by that graph anyway (a weight step's
// path), and a smaller graph that allocates much (the full_v2
// recomputation) would otherwise collect over and over, and every
// collection empties the buffer pools, so the next buffers are allocated,
// zeroed and faulted in afresh.
func (s *Searcher) budget(peak int64) {
	h := s.cfg.MemoryHeadroom
	if !s.mem.inStep || h < 0 {
		return
	}
	if h == 0 {
		h = DefaultMemoryHeadroom
	}
	s.mem.peak = max(s.mem.peak, peak)
	lim := s.mem.base + int64(h*float64(s.mem.peak)) + memorySlack
	lim = min(lim, s.mem.processLimit)
	s.mem.lastLimit = lim
	debug.SetMemoryLimit(lim)
}

// liveHeap returns the heap marked live by the last collection.
func liveHeap() int64 {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(sample[0].Value.Uint64())
}

// Close releases the GoMLX backends.
func (s *Searcher) Close() {
	if s.backend != nil {
		s.backend.Finalize()
		s.backend = nil
	}
	if s.seqBackend != nil {
		s.seqBackend.Finalize()
		s.seqBackend = nil
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
	return s.weightStep(x, labels, lr, r)
}

// TrainStep is a weight step on the network that takes candidate choice[l]
// at every layer: no sampling, whatever the gate mode. It is how the train
// epochs fine-tune the derived network.
func (s *Searcher) TrainStep(x []float32, labels []int, lr float64, choice []int) (StepStats, error) {
	if err := s.validateBatch(x, labels); err != nil {
		return StepStats{}, err
	}
	if err := checkChoice(s.plan, "train step", choice); err != nil {
		return StepStats{}, err
	}
	return s.weightStep(x, labels, lr, netRun{smoothing: s.cfg.LabelSmoothing, weightGrads: true, choice: slices.Clone(choice)})
}

// checkChoice validates a choice vector (a candidate per layer) against
// the plan; what names the caller in the error.
func checkChoice(p *space.Plan, what string, choice []int) error {
	if len(choice) != len(p.Layers) {
		return fmt.Errorf("search: %s: expected %d choices, got %d", what, len(p.Layers), len(choice))
	}
	for l, j := range choice {
		if j < 0 || j >= len(p.Layers[l].Candidates) {
			return fmt.Errorf("search: %s: choice[%d]: expected 0..%d, got %d", what, l, len(p.Layers[l].Candidates)-1, j)
		}
	}
	return nil
}

// weightStep runs r's forward and backward pass and applies SGD.
func (s *Searcher) weightStep(x []float32, labels []int, lr float64, r netRun) (StepStats, error) {
	defer s.stepMemory()()
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
	s.sgdDecay(p, g, lr, s.cfg.WeightDecay)
}

// sgdDecay is sgd with weight decay weightDecay.
func (s *Searcher) sgdDecay(p *param, g []float64, lr, weightDecay float64) {
	wd, mom, lr32 := float32(weightDecay), float32(s.cfg.Momentum), float32(lr)
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
