package search

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/gomlx/gomlx/pkg/core/graph"

	"github.com/pnasml/pnas/search/internal/gx"
)

// ArchStats reports one architecture step.
type ArchStats struct {
	CE              float64       // plain cross entropy on the held-out batch
	Loss            float64       // CE combined with the latency term
	ExpectedLatency float64       // E[LAT] used by the loss (microseconds; 0 without a table)
	Accuracy        float64       // top-1 of the sampled path on the batch
	Choice          []int         // active candidate per layer (nil in all mode)
	Frozen          int           // layers whose update was dropped because Zero was active
	PathTime        time.Duration // forward and backward of the sampled path (whole step in all mode)
	RecomputeTime   time.Duration // recomputing the other candidates (full_v2, two)
	Reward          float64       // mean reward of the sampled paths (reinforce)
	Baseline        float64       // the moving-average baseline after the step (reinforce)
}

// edge is the architecture-step state of one searchable layer.
type edge struct {
	set    []int     // candidates whose alphas take part (all, or the sampled pair)
	q      []float64 // their probabilities: softmax over set
	active int       // active candidate; -1 in all mode
	gate   []float64 // dCE/dg_j for j in set
}

// ArchStep updates alpha on one held-out batch: plain cross entropy
// through the gate-gradient estimator of Config.GateMode, plus the latency
// term through dE/dalpha, then one Adam step. Weights are not updated; BN
// running statistics are, as in a train-mode forward pass.
func (s *Searcher) ArchStep(x []float32, labels []int) (ArchStats, error) {
	if err := s.validateBatch(x, labels); err != nil {
		return ArchStats{}, err
	}
	if s.cfg.GateMode == GateReinforce {
		return s.reinforceStep(x, labels)
	}
	defer s.stepMemory()()
	var (
		edges []edge
		st    ArchStats
		err   error
	)
	switch s.cfg.GateMode {
	case GateAll:
		edges, st, err = s.archGradsAll(x, labels)
	default:
		edges, st, err = s.archGradsBinary(x, labels)
	}
	if err != nil {
		return ArchStats{}, err
	}
	grads, loss, e, err := s.alphaGrads(edges, st.CE)
	if err != nil {
		return ArchStats{}, err
	}
	st.Loss, st.ExpectedLatency = loss, e
	for l, ed := range edges {
		if grads[l] == nil {
			st.Frozen++ // Zero was active: the edge's whole gradient is dropped
			continue
		}
		var old []float64
		if s.cfg.GateMode == GateTwo && len(ed.set) == 2 {
			old = []float64{s.alpha[l][ed.set[0]], s.alpha[l][ed.set[1]]}
		}
		s.adam(l, grads[l])
		if old != nil {
			// Keep exp(alpha_a) + exp(alpha_b), so the other candidates'
			// probabilities do not move.
			a, b := ed.set[0], ed.set[1]
			c := math.Log((math.Exp(s.alpha[l][a]) + math.Exp(s.alpha[l][b])) / (math.Exp(old[0]) + math.Exp(old[1])))
			s.alpha[l][a] -= c
			s.alpha[l][b] -= c
		}
	}
	s.pos.ArchSteps++
	return st, nil
}

// alphaGrads combines the gate gradients dCE/dg_j of every edge with the
// latency term into dL/dalpha:
//
//	dL/dalpha_i = dL/dCE * sum_j dCE/dg_j q_j (delta_ij - q_i) + dL/dE * q_i (F_i - sum_k q_k F_k)
//
// over each edge's set with its probabilities q. An edge whose active
// candidate is Zero gets a nil gradient. It also returns the loss and E.
func (s *Searcher) alphaGrads(edges []edge, ce float64) (grads [][]float64, loss, e float64, err error) {
	if s.lat != nil {
		e = s.lat.Fixed
		for l, ed := range edges {
			for i, j := range ed.set {
				e += ed.q[i] * s.lat.Layer[l][j]
			}
		}
	}
	loss, dCE, dE, err := s.lossFn.Eval(ce, e)
	if err != nil {
		return nil, 0, 0, err
	}
	grads = make([][]float64, len(edges))
	for l, ed := range edges {
		if ed.active >= 0 && s.plan.Layers[l].Candidates[ed.active].Zero {
			continue
		}
		g := make([]float64, len(s.alpha[l]))
		var meanF float64
		if s.lat != nil {
			for i, j := range ed.set {
				meanF += ed.q[i] * s.lat.Layer[l][j]
			}
		}
		for i, ji := range ed.set {
			v := 0.0
			for k := range ed.set {
				delta := 0.0
				if i == k {
					delta = 1
				}
				v += dCE * ed.gate[k] * ed.q[k] * (delta - ed.q[i])
			}
			if s.lat != nil {
				v += dE * ed.q[i] * (s.lat.Layer[l][ji] - meanF)
			}
			g[ji] = v
		}
		grads[l] = g
	}
	return grads, loss, e, nil
}

// adam applies one PyTorch Adam step to layer l's alpha.
func (s *Searcher) adam(l int, g []float64) {
	c := &s.cfg
	s.adamT[l]++
	t := float64(s.adamT[l])
	bc1 := 1 - math.Pow(c.ArchBeta1, t)
	bc2 := 1 - math.Pow(c.ArchBeta2, t)
	a, m, v := s.alpha[l], s.adamM[l], s.adamV[l]
	for i := range a {
		gi := g[i] + c.ArchWeightDecay*a[i]
		m[i] = c.ArchBeta1*m[i] + (1-c.ArchBeta1)*gi
		v[i] = c.ArchBeta2*v[i] + (1-c.ArchBeta2)*gi*gi
		denom := math.Sqrt(v[i])/math.Sqrt(bc2) + c.ArchEps
		a[i] -= c.ArchLR / bc1 * m[i] / denom
	}
}

// sampleEdges draws the active candidate of every layer: from softmax(alpha)
// over all candidates (full_v2), or from the renormalized pair drawn
// without replacement (two).
func (s *Searcher) sampleEdges() []edge {
	edges := make([]edge, len(s.plan.Layers))
	for l := range edges {
		p := softmax(s.alpha[l])
		if s.cfg.GateMode == GateTwo && len(p) >= 2 {
			a := draw(s.sample, p)
			rest := append([]float64(nil), p...)
			rest[a] = 0
			for i := range rest {
				rest[i] /= 1 - p[a]
			}
			b := draw(s.sample, rest)
			q := softmax([]float64{s.alpha[l][a], s.alpha[l][b]})
			active := a
			if draw(s.sample, q) == 1 {
				active = b
			}
			edges[l] = edge{set: []int{a, b}, q: q, active: active}
			continue
		}
		all := make([]int, len(p))
		for j := range all {
			all[j] = j
		}
		edges[l] = edge{set: all, q: p, active: draw(s.sample, p)}
	}
	return edges
}

// archGradsBinary runs the sampled path on the batch (phase 1: the input
// gradient flows only through the active candidates) and then recomputes
// the other candidates of each set without gradients (phase 2) to get
// dCE/dg_j = <o_j(x), dCE/dy> for every j in the set.
func (s *Searcher) archGradsBinary(x []float32, labels []int) ([]edge, ArchStats, error) {
	edges := s.sampleEdges()
	choice := make([]int, len(edges))
	for l := range edges {
		choice[l] = edges[l].active
	}
	t0 := time.Now()
	out, err := s.runNet(x, labels, netRun{choice: choice, taps: true})
	if err != nil {
		return nil, ArchStats{}, err
	}
	s.updateRunningStats(out.bn, out.res)
	st := ArchStats{CE: out.loss, Accuracy: accuracy(out.logits, labels, s.plan.Classes), Choice: choice}
	for l := range edges {
		edges[l].gate = make([]float64, len(edges[l].set))
	}
	t1 := time.Now()
	if err := s.recompute(edges, out.taps); err != nil {
		return nil, ArchStats{}, err
	}
	st.PathTime, st.RecomputeTime = t1.Sub(t0), time.Since(t1)
	return edges, st, nil
}

// recompute fills every edge's gate gradients: the active candidate's from
// phase 1, the others' by running them, without gradients, on the saved
// layer input against the saved output gradient. A Zero candidate's output
// is 0, so its gate gradient is 0.
//
// The candidates go into two graphs of about equal cost, run concurrently
// on the searcher's sequential backend (each graph's ops one at a time, in
// order, so each holds one candidate's intermediates at a time; the
// matrix products still use every core). Only the scalar <o_j, dL/dy> of
// each candidate is an output.
func (s *Searcher) recompute(edges []edge, taps map[int]*layerTap) error {
	type eval struct{ layer, idx, out int }
	type job struct {
		b     *gbuilder
		evals []eval
		cost  int64
		res   runResult
		err   error
	}
	be, err := s.sequentialBackend()
	if err != nil {
		return err
	}
	jobs := [2]*job{}
	for i := range jobs {
		b := &gbuilder{s: s, g: graph.NewGraph(be, fmt.Sprintf("arch_recompute_%d", i)), pidx: map[string]int{}, noGrad: true}
		jobs[i] = &job{b: b}
	}
	for l := range edges {
		t, ok := taps[l]
		if !ok {
			continue // Zero is active: the edge is skipped
		}
		ed := &edges[l]
		layer := s.plan.Layers[l]
		var todo []int
		var cost int64
		for i, j := range ed.set {
			c := layer.Candidates[j]
			switch {
			case j == ed.active:
				ed.gate[i] = t.gate
			case !c.Zero:
				todo = append(todo, i)
				cost += LayerMACs(layer, c)
			}
		}
		if len(todo) == 0 {
			continue
		}
		jb := jobs[0]
		if jobs[1].cost < jb.cost {
			jb = jobs[1]
		}
		jb.cost += cost
		b := jb.b
		xl := b.inputTap(fmt.Sprintf("x.%d", l), t.x32, t.x, t.xDims...)
		gl := b.inputTap(fmt.Sprintf("dy.%d", l), t.dy32, t.dy, t.oDims...)
		for _, i := range todo {
			c := layer.Candidates[ed.set[i]]
			o := b.mbconv(candPrefix(layer, c), xl, c.Kernel, c.Expand, layer.Stride)
			jb.evals = append(jb.evals, eval{layer: l, idx: i, out: b.out(gx.Inner(o, gl))})
		}
	}
	var wg sync.WaitGroup
	for _, jb := range jobs {
		if len(jb.evals) == 0 {
			jb.b.g.Finalize()
			continue
		}
		jb.b.bnOutputs()
		wg.Add(1)
		go func() {
			defer wg.Done()
			jb.res, jb.err = jb.b.run()
		}()
	}
	wg.Wait()
	for _, jb := range jobs {
		if len(jb.evals) == 0 {
			continue
		}
		if jb.err != nil {
			return jb.err
		}
		s.updateRunningStats(jb.b.bn, jb.res)
		for _, e := range jb.evals {
			edges[e.layer].gate[e.idx] = jb.res.vals[e.out][0]
		}
	}
	return nil
}

// archGradsAll runs every candidate weighted by p = softmax(alpha) and
// takes dCE/dp_j = <o_j, dCE/dy> from the graph.
func (s *Searcher) archGradsAll(x []float32, labels []int) ([]edge, ArchStats, error) {
	probs := s.Probs()
	t0 := time.Now()
	out, err := s.runNet(x, labels, netRun{coefs: probs, coefGrads: true})
	if err != nil {
		return nil, ArchStats{}, err
	}
	s.updateRunningStats(out.bn, out.res)
	edges := make([]edge, len(probs))
	for l, p := range probs {
		set := make([]int, len(p))
		for j := range p {
			set[j] = j
		}
		edges[l] = edge{set: set, q: p, active: -1, gate: out.coefGrads[l]}
	}
	return edges, ArchStats{CE: out.loss, Accuracy: accuracy(out.logits, labels, s.plan.Classes), PathTime: time.Since(t0)}, nil
}
