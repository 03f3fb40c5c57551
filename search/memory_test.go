package search

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/pnasml/pnas/internal/archnet"
	"github.com/pnasml/pnas/search/internal/gx"
	"github.com/pnasml/pnas/search/space"
)

// errPlanned stops a run after its graph has been planned.
var errPlanned = errors.New("planned")

// plannedPeaks builds, without running them, the graphs that fn makes the
// searcher build and returns the planned working set of each, by graph
// name.
func plannedPeaks(t *testing.T, s *Searcher, fn func()) map[string]int64 {
	t.Helper()
	peaks := map[string]int64{}
	var mu sync.Mutex
	s.onCompile = func(g *graph.Graph, outs []*graph.Node) error {
		p := gx.PlanMemory(g, outs).Peak
		mu.Lock()
		peaks[g.Name()] = p
		mu.Unlock()
		return errPlanned
	}
	defer func() { s.onCompile = nil }()
	fn()
	return peaks
}

// fmnistSearcher returns a searcher over the fmnist space with the given
// candidates and a batch of 64 images (the benchmark's shapes).
func fmnistSearcher(t *testing.T, cands []string) (*Searcher, []float32, []int) {
	t.Helper()
	sp, err := space.Builtin("fmnist")
	if err != nil {
		t.Fatal(err)
	}
	sp.Candidates = cands
	cfg := DefaultConfig()
	cfg.LatencyLoss = LossNone
	s := newTest(t, sp, cfg)
	x, y := synthBatch(s.Plan(), 64, rand.New(rand.NewPCG(20, 21)))
	return s, x, y
}

// uniformChoice picks candidate name at every layer.
func uniformChoice(t *testing.T, p *space.Plan, name string) []int {
	t.Helper()
	choice, all := archnet.Uniform(p, name)
	if !all {
		t.Fatalf("some layer has no candidate %s: %v", name, choice)
	}
	return choice
}

// fakeTaps returns zero layer inputs and output gradients shaped for the
// recomputation graph of a batch of n images.
func fakeTaps(p *space.Plan, n int) map[int]*layerTap {
	taps := map[int]*layerTap{}
	for l, layer := range p.Layers {
		in, out := layer.In, layer.Out
		taps[l] = &layerTap{
			xDims: []int{in.C, n, in.H, in.W}, oDims: []int{out.C, n, out.H, out.W},
			x: make([]float64, in.C*n*in.H*in.W), dy: make([]float64, out.C*n*out.H*out.W),
		}
	}
	return taps
}

// TestGraphMemoryFlatInKernel checks, on the fmnist space at batch 64, the
// structural property behind a binarized search's memory: the planned
// working set of a path's weight-step graph (and of the architecture
// step's graphs) does not grow with the candidates' kernel size, so a
// search over k3..k7 candidates needs what one over k3 candidates needs,
// while the all-paths graph grows with the number of candidates.
func TestGraphMemoryFlatInKernel(t *testing.T) {
	all := space.DefaultCandidates // k3e3 ... k7e6, zero
	s, x, y := fmnistSearcher(t, all)
	weight := func(name string) int64 {
		choice := uniformChoice(t, s.Plan(), name)
		return plannedPeaks(t, s, func() {
			if _, err := s.runNet(x, y, netRun{choice: choice, smoothing: 0.1, weightGrads: true}); !errors.Is(err, errPlanned) {
				t.Fatalf("path %s: %v", name, err)
			}
		})["supernet"]
	}
	for _, e := range []string{"e3", "e6"} {
		k3, k5, k7 := weight("k3"+e), weight("k5"+e), weight("k7"+e)
		t.Logf("weight step, every layer k3%s / k5%s / k7%s: %.0f / %.0f / %.0f MiB", e, e, e, mib(k3), mib(k5), mib(k7))
		if k5 > k3*110/100 || k7 > k3*110/100 {
			t.Errorf("weight step %s: planned working set %.0f MiB (k3) grows to %.0f (k5) and %.0f MiB (k7), want within 10%%", e, mib(k3), mib(k5), mib(k7))
		}
	}

	// Architecture step (full_v2): the path graph with layer taps, then the
	// recomputation of the other candidates in two graphs run side by side;
	// neither may need more than the weight step of the same path, which
	// sets the search's peak.
	arch := func(name string) (path, rec int64) {
		choice := uniformChoice(t, s.Plan(), name)
		path = plannedPeaks(t, s, func() {
			if _, err := s.runNet(x, y, netRun{choice: choice, taps: true}); !errors.Is(err, errPlanned) {
				t.Fatalf("path %s: %v", name, err)
			}
		})["supernet"]
		edges := make([]edge, len(choice))
		for l := range edges {
			edges[l] = edge{set: []int{0, 1, 2, 3, 4, 5}, active: choice[l], gate: make([]float64, 6)}
		}
		recs := plannedPeaks(t, s, func() {
			if err := s.recompute(edges, fakeTaps(s.Plan(), 64)); !errors.Is(err, errPlanned) {
				t.Fatalf("recomputation %s: %v", name, err)
			}
		})
		if len(recs) != 2 {
			t.Fatalf("recomputation %s: %d graphs, want 2", name, len(recs))
		}
		for _, p := range recs {
			rec += p
		}
		return path, rec
	}
	p3, r3 := arch("k3e6")
	p7, r7 := arch("k7e6")
	w3, w7 := weight("k3e6"), weight("k7e6")
	t.Logf("architecture step, path k3e6 / k7e6: %.0f / %.0f MiB, recomputation (both graphs) %.0f / %.0f MiB", mib(p3), mib(p7), mib(r3), mib(r7))
	if p7 > p3*110/100 {
		t.Errorf("architecture path: planned working set %.0f MiB (k3e6) grows to %.0f MiB (k7e6)", mib(p3), mib(p7))
	}
	if p3 > w3 || p7 > w7 || r3 > w3 || r7 > w7 {
		t.Errorf("architecture step needs path %.0f / %.0f MiB and recomputation %.0f / %.0f MiB, more than the weight step (%.0f / %.0f MiB)",
			mib(p3), mib(p7), mib(r3), mib(r7), mib(w3), mib(w7))
	}

	// All mode: every candidate runs, so the graph grows with K.
	allMode := func(cands []string) int64 {
		s, x, y := fmnistSearcher(t, cands)
		return plannedPeaks(t, s, func() {
			if _, err := s.runNet(x, y, netRun{coefs: s.Probs(), smoothing: 0.1, weightGrads: true}); !errors.Is(err, errPlanned) {
				t.Fatalf("all mode %v: %v", cands, err)
			}
		})["supernet"]
	}
	a2, a7 := allMode(all[:2]), allMode(all)
	t.Logf("all mode, K=2 / K=7: %.0f / %.0f MiB", mib(a2), mib(a7))
	if a7 < 2*a2 {
		t.Errorf("all mode: planned working set %.0f MiB with K=2, only %.0f MiB with K=7", mib(a2), mib(a7))
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
