package search

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// newTest64 is newTest with float64 graphs, for finite differences.
func newTest64(t *testing.T, cfg Config, cands ...string) *Searcher {
	s := newTest(t, tinySpace(cands...), cfg)
	s.dtype = dtypes.Float64
	return s
}

func near(a, b, abs, rel float64) bool {
	return math.Abs(a-b) <= abs+rel*math.Max(math.Abs(a), math.Abs(b))
}

// TestNetworkWeightGradients checks the weight-step gradient of every
// trainable tensor of a path (stem, first block, expand, depthwise with
// stride 2 and 1, project, residual, head, classifier) against central
// finite differences of the label-smoothed loss. With nested sharing the
// candidates' convolutions are slices of a layer's shared tensors: their
// gradients must reach the shared tensor inside the slice and be zero
// outside it.
func TestNetworkWeightGradients(t *testing.T) {
	for _, share := range []string{ShareNone, ShareNested} {
		t.Run("share="+share, func(t *testing.T) { testNetworkWeightGradients(t, share) })
	}
}

func testNetworkWeightGradients(t *testing.T, share string) {
	cfg := testConfig()
	cfg.Sharing = share
	s := newTest64(t, cfg, "k3e3", "k5e6", "zero")
	rng := rand.New(rand.NewPCG(2, 3))
	x, y := synthBatch(s.Plan(), 6, rng)
	r := netRun{choice: []int{0, 1}, smoothing: cfg.LabelSmoothing, weightGrads: true}
	out, err := s.runNet(x, y, r)
	if err != nil {
		t.Fatal(err)
	}
	lossAt := func() float64 {
		o, err := s.runNet(x, y, netRun{choice: r.choice, smoothing: r.smoothing})
		if err != nil {
			t.Fatal(err)
		}
		return o.loss
	}
	if len(out.grads) < 30 {
		t.Fatalf("expected gradients for every trainable tensor of the path, got %d", len(out.grads))
	}
	if share == ShareNested {
		// layer 0 runs k3e3 out of tensors sized for k5e6: the shared
		// depthwise kernel's corners and the channels beyond 3*cin get no
		// gradient, the centre 3x3 of the first 3*cin channels does
		var dw *paramGrad
		for i := range out.grads {
			if out.grads[i].p.name == "s1.l0.shared.dw.conv.weight" {
				dw = &out.grads[i]
			}
		}
		if dw == nil {
			t.Fatal("no gradient for the shared depthwise kernel of layer 0")
		}
		c, k := dw.p.shape[0], dw.p.shape[2]
		used := s.Plan().Layers[0].In.C * 3
		inside, outside := 0.0, 0.0
		for ch := 0; ch < c; ch++ {
			for y := 0; y < k; y++ {
				for x := 0; x < k; x++ {
					g := math.Abs(dw.g[(ch*k+y)*k+x])
					if ch < used && y >= 1 && y <= 3 && x >= 1 && x <= 3 {
						inside += g
					} else {
						outside += g
					}
				}
			}
		}
		if k != 5 || c != s.Plan().Layers[0].In.C*6 || inside == 0 || outside != 0 {
			t.Fatalf("shared dw %v: |grad| inside the k3e3 slice %g, outside %g", dw.p.shape, inside, outside)
		}
	}
	// The loss is piecewise smooth (ReLU6 kinks): a step that crosses a
	// kink gives a wrong difference quotient, so a mismatch is retried with
	// smaller steps before it counts.
	fd := func(p *param, i int, h float32) float64 {
		w0 := p.w[i]
		defer func() { p.w[i] = w0 }()
		p.w[i] = w0 + h
		up := float64(p.w[i])
		lp := lossAt()
		p.w[i] = w0 - h
		down := float64(p.w[i])
		return (lp - lossAt()) / (up - down)
	}
	for _, pg := range out.grads {
		for _, i := range rng.Perm(len(pg.p.w))[:min(2, len(pg.p.w))] {
			var num float64
			ok := false
			for _, h := range []float32{1e-5, 1e-6, 3e-7} {
				num = fd(pg.p, i, h)
				if near(num, pg.g[i], 1e-8, 1e-4) {
					ok = true
					break
				}
			}
			if !ok {
				t.Errorf("%s[%d]: analytic %.9g, finite differences %.9g", pg.p.name, i, pg.g[i], num)
			}
		}
	}
}

// TestGateGradients checks dCE/dg_j = <o_j, dCE/dy> from the path graph and
// the recomputation against finite differences of the network in which
// layer l outputs sum_j g_j o_j, at g = one-hot(active).
func TestGateGradients(t *testing.T) {
	cfg := testConfig()
	s := newTest64(t, cfg, "k3e3", "k5e6", "zero")
	rng := rand.New(rand.NewPCG(4, 5))
	x, y := synthBatch(s.Plan(), 6, rng)
	choice := []int{1, 0}
	edges := []edge{{set: []int{0, 1}, active: 1}, {set: []int{0, 1, 2}, active: 0}}
	for l := range edges {
		edges[l].gate = make([]float64, len(edges[l].set))
	}
	out, err := s.runNet(x, y, netRun{choice: choice, taps: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.recompute(edges, out.taps); err != nil {
		t.Fatal(err)
	}
	const h = 1e-5
	for l, ed := range edges {
		for i, j := range ed.set {
			ce := func(d float64) float64 {
				coefs := make([][]float64, len(edges))
				for m := range coefs {
					coefs[m] = make([]float64, len(s.alpha[m]))
					coefs[m][choice[m]] = 1
				}
				coefs[l][j] += d
				o, err := s.runNet(x, y, netRun{coefs: coefs})
				if err != nil {
					t.Fatal(err)
				}
				return o.loss
			}
			num := (ce(h) - ce(-h)) / (2 * h)
			if !near(num, ed.gate[i], 1e-8, 1e-5) {
				t.Errorf("layer %d candidate %d: gate gradient %.9g, finite differences %.9g", l, j, ed.gate[i], num)
			}
		}
	}
	if edges[1].gate[2] != 0 {
		t.Errorf("Zero candidate: gate gradient %g, want 0", edges[1].gate[2])
	}
}

// TestAlphaGradientAllMode checks dL/dalpha (gate gradients through the
// softmax Jacobian plus the mul#log latency term through dE/dalpha)
// against finite differences of L(alpha) = a*CE*(ln E/ln T)^beta for the
// network weighted by softmax(alpha).
func TestAlphaGradientAllMode(t *testing.T) {
	cfg := testConfig()
	cfg.GateMode = GateAll
	cfg.LatencyLoss = LossMulLog
	cfg.AlphaInitStd = 0.5
	cfg.TargetLatency = 10
	s := newTest64(t, cfg, "k3e3", "k5e6", "zero")
	e0 := s.lat.Expected(s.Probs())
	s.lossFn.Target = e0 * 0.7
	s.cfg.TargetLatency = s.lossFn.Target
	rng := rand.New(rand.NewPCG(6, 7))
	x, y := synthBatch(s.Plan(), 6, rng)
	edges, st, err := s.archGradsAll(x, y)
	if err != nil {
		t.Fatal(err)
	}
	grads, _, _, err := s.alphaGrads(edges, st.CE)
	if err != nil {
		t.Fatal(err)
	}
	lossAt := func() float64 {
		probs := s.Probs()
		o, err := s.runNet(x, y, netRun{coefs: probs})
		if err != nil {
			t.Fatal(err)
		}
		l, _, _, err := s.lossFn.Eval(o.loss, s.lat.Expected(probs))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	const h = 1e-5
	for l := range s.alpha {
		for j := range s.alpha[l] {
			a0 := s.alpha[l][j]
			s.alpha[l][j] = a0 + h
			lp := lossAt()
			s.alpha[l][j] = a0 - h
			lm := lossAt()
			s.alpha[l][j] = a0
			num := (lp - lm) / (2 * h)
			if !near(num, grads[l][j], 1e-8, 1e-5) {
				t.Errorf("alpha[%d][%d]: analytic %.9g, finite differences %.9g", l, j, grads[l][j], num)
			}
		}
	}
}
