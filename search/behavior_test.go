package search

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/pnasml/pnas/data"
	"github.com/pnasml/pnas/internal/archnet"
	"github.com/pnasml/pnas/ir/interp"
	"github.com/pnasml/pnas/search/space"
)

// TestArchStepPrefersFastCandidates runs architecture steps with a heavy
// latency weight: in every layer alpha must move toward the cheaper
// candidates, and where Zero is allowed it must end up the most probable.
func TestArchStepPrefersFastCandidates(t *testing.T) {
	for _, mode := range []string{GateFullV2, GateTwo, GateAll} {
		t.Run(mode, func(t *testing.T) {
			cfg := testConfig()
			cfg.GateMode = mode
			cfg.LatencyLoss = LossAddLinear
			cfg.LatencyLambda = 50
			cfg.TargetLatency = 1
			cfg.ArchLR = 0.05
			s := newTest(t, tinySpace("k3e3", "k7e6", "zero"), cfg)
			rng := rand.New(rand.NewPCG(8, 9))
			x, y := synthBatch(s.Plan(), 8, rng)
			for i := 0; i < 12; i++ {
				if _, err := s.ArchStep(x, y); err != nil {
					t.Fatal(err)
				}
			}
			for l, p := range s.Probs() {
				cands := s.Plan().Layers[l].Candidates
				if p[0] <= p[1] {
					t.Errorf("layer %d: p(k3e3)=%.3f not above p(k7e6)=%.3f (%v)", l, p[0], p[1], p)
				}
				if len(cands) == 3 && !(p[2] > p[0]) {
					t.Errorf("layer %d: p(zero)=%.3f not the largest (%v)", l, p[2], p)
				}
			}
		})
	}
}

// TestTwoModeRescale checks that a two-mode step changes only the sampled
// pair of each updated layer and keeps the sum of their exp(alpha), so the
// other candidates' probabilities stay, and that a layer whose active
// candidate was Zero keeps alpha and Adam state untouched.
func TestTwoModeRescale(t *testing.T) {
	cfg := testConfig()
	cfg.GateMode = GateTwo
	cfg.LatencyLoss = LossMulLog
	cfg.TargetLatency = 30
	cfg.ArchLR = 0.1
	cfg.AlphaInitStd = 0.3
	s := newTest(t, tinySpace("k3e3", "k5e3", "k3e6", "zero"), cfg)
	rng := rand.New(rand.NewPCG(10, 11))
	x, y := synthBatch(s.Plan(), 8, rng)
	frozenSeen, movedSeen := false, false
	for step := 0; step < 12; step++ {
		before := s.Alpha()
		pBefore := s.Probs()
		tBefore := append([]int64(nil), s.adamT...)
		st, err := s.ArchStep(x, y)
		if err != nil {
			t.Fatal(err)
		}
		after := s.Alpha()
		pAfter := s.Probs()
		for l := range after {
			cands := s.Plan().Layers[l].Candidates
			if cands[st.Choice[l]].Zero {
				frozenSeen = true
				if !slices.Equal(before[l], after[l]) || s.adamT[l] != tBefore[l] {
					t.Errorf("step %d layer %d: Zero active but alpha or Adam state changed", step, l)
				}
				continue
			}
			var changed []int
			for j := range after[l] {
				if after[l][j] != before[l][j] {
					changed = append(changed, j)
				}
			}
			if len(changed) > 2 {
				t.Errorf("step %d layer %d: %d alphas changed, want at most 2", step, l, len(changed))
			}
			if len(changed) == 2 {
				movedSeen = true
				a, b := changed[0], changed[1]
				s0 := math.Exp(before[l][a]) + math.Exp(before[l][b])
				s1 := math.Exp(after[l][a]) + math.Exp(after[l][b])
				if math.Abs(s0-s1) > 1e-12*s0 {
					t.Errorf("step %d layer %d: exp-sum of the pair %g -> %g", step, l, s0, s1)
				}
				for j := range pAfter[l] {
					if j != a && j != b && math.Abs(pAfter[l][j]-pBefore[l][j]) > 1e-12 {
						t.Errorf("step %d layer %d: p[%d] of an unsampled candidate moved %g -> %g", step, l, j, pBefore[l][j], pAfter[l][j])
					}
				}
			}
		}
	}
	if !frozenSeen || !movedSeen {
		t.Fatalf("test did not exercise both cases: frozen %v, moved %v", frozenSeen, movedSeen)
	}
}

// TestMemoryStable runs weight and architecture steps on ever different
// paths. Every step must return with the heap at its level before the step
// (simplego's buffer pools emptied: nothing a graph allocated outlives its
// step), run its graphs under a memory budget and restore the process's
// memory limit; over 40 steps the heap must not grow, and no custom
// gradients or cached nodes may be left behind.
//
// This is simplego's regime, which the program opts into
// (ManageProcessMemory); TestMemoryStablePnas checks the default backend.
func TestMemoryStable(t *testing.T) {
	cfg := testConfig()
	cfg.Backend = "go"
	s := newTest(t, tinySpace("k3e3", "k5e6", "k7e3", "zero"), cfg)
	s.ManageProcessMemory()
	rng := rand.New(rand.NewPCG(12, 13))
	x, y := synthBatch(s.Plan(), 8, rng)
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	const processLimit = 3 << 30
	old := debug.SetMemoryLimit(processLimit)
	defer debug.SetMemoryLimit(old)
	var h0 uint64
	check := func(what string, i int) {
		if h := heap(); h0 > 0 && h > h0+4<<20 {
			t.Errorf("%s %d returned with %d bytes of heap, %d before the steps", what, i, h, h0)
		}
		if lim := debug.SetMemoryLimit(-1); lim != processLimit {
			t.Errorf("%s %d: memory limit %d after the step, want the process's %d", what, i, lim, processLimit)
		}
		if s.mem.lastLimit <= 0 || s.mem.lastLimit >= processLimit {
			t.Errorf("%s %d: budget %d, want a limit below the process's", what, i, s.mem.lastLimit)
		}
		s.mem.lastLimit = 0
	}
	step := func(i int) {
		if _, err := s.WeightStep(x, y, 0.01, false); err != nil {
			t.Fatal(err)
		}
		check("weight step", i)
		if _, err := s.ArchStep(x, y); err != nil {
			t.Fatal(err)
		}
		check("architecture step", i)
	}
	step(0)
	runtime.GC()
	h0 = heap()
	for i := 1; i <= 40; i++ {
		step(i)
	}
	if n := numCustomVJPs(); n != 0 {
		t.Errorf("%d custom gradient entries left after the steps", n)
	}
}

// TestMemoryStablePnas runs weight and architecture steps on ever
// different paths on the default backend, which changes no process-wide
// setting: the GC percentage and the memory limit stay as the process set
// them, and after a collection the heap stays at its level after the first
// step (the backend keeps at most about one working set of free buffers for
// the next graphs; nothing else a graph allocated outlives its step).
func TestMemoryStablePnas(t *testing.T) {
	s := newTest(t, tinySpace("k3e3", "k5e6", "k7e3", "zero"), testConfig())
	s.ManageProcessMemory() // no effect on this backend
	rng := rand.New(rand.NewPCG(12, 13))
	x, y := synthBatch(s.Plan(), 8, rng)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	const processLimit = 3 << 30
	old := debug.SetMemoryLimit(processLimit)
	defer debug.SetMemoryLimit(old)
	oldGC := debug.SetGCPercent(77)
	defer debug.SetGCPercent(oldGC)
	var h0 uint64
	var late []uint64 // the heap after each of the last 10 steps
	for i := 0; i <= 40; i++ {
		if _, err := s.WeightStep(x, y, 0.01, false); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ArchStep(x, y); err != nil {
			t.Fatal(err)
		}
		if lim := debug.SetMemoryLimit(-1); lim != processLimit {
			t.Fatalf("step %d: memory limit %d, want the process's %d", i, lim, processLimit)
		}
		if gc := debug.SetGCPercent(77); gc != 77 {
			t.Fatalf("step %d: GOGC %d, want the process's 77", i, gc)
		}
		switch {
		case i == 0:
			h0 = heap()
		case i > 30:
			late = append(late, heap())
		}
	}
	// A leak grows the heap step after step, so it is above the bound
	// after every late step; a spike in one reading (a goroutine of an
	// earlier test finishing on a loaded machine: 7.2 MB once, at step
	// 17) is not a leak.
	if low := slices.Min(late); low > h0+4<<20 {
		t.Errorf("%d bytes of heap or more after a collection in each of the last %d steps, %d after the first step", low, len(late), h0)
	}
	if n := numCustomVJPs(); n != 0 {
		t.Errorf("%d custom gradient entries left after the steps", n)
	}
}

// synthDataset makes a learnable data set in the data package's format.
func synthDataset(p *space.Plan, n int, seed uint64) *data.Dataset {
	in := p.Stem.In
	rng := rand.New(rand.NewPCG(seed, 1))
	d := &data.Dataset{Name: "synthetic", C: in.C, H: in.H, W: in.W}
	for c := 0; c < p.Classes; c++ {
		d.Classes = append(d.Classes, string(rune('a'+c)))
	}
	per := in.C * in.H * in.W
	for i := 0; i < n; i++ {
		l := rng.IntN(p.Classes)
		d.Labels = append(d.Labels, uint8(l))
		for j := 0; j < per; j++ {
			v := 60*l + 40 + rng.IntN(80)
			d.Pixels = append(d.Pixels, uint8(min(v, 255)))
		}
	}
	return d
}

var errStop = errors.New("stop")

// TestResumeBitIdentical runs a schedule uninterrupted and, with the same
// seed, stopped mid-epoch, saved, loaded and continued: alpha, Adam state,
// weights, momentum and BN statistics must agree bit for bit.
//
// The run and the resumed run use the default backend with different
// worker counts, and simplego with different schedules.
func TestResumeBitIdentical(t *testing.T) {
	for _, tc := range []struct{ backend, resumeOn, share string }{
		{"", "pnas:parallelism=1", ""},
		{"go", "go:ops_sequential", ""},
		{"", "pnas:parallelism=1", ShareNested},
	} {
		t.Run("backend="+tc.resumeOn+",share="+tc.share, func(t *testing.T) { testResumeBitIdentical(t, tc.backend, tc.resumeOn, tc.share) })
	}
}

func testResumeBitIdentical(t *testing.T, backend, resumeOn, share string) {
	cfg := testConfig()
	cfg.Backend = backend
	cfg.Sharing = share
	cfg.WarmupEpochs, cfg.SearchEpochs = 1, 2
	cfg.ArchEvery = 2
	cfg.ArchSkipEpoch0 = false
	cfg.LatencyLoss = LossMulLog
	cfg.TargetLatency = 30
	cfg.Seed = 42
	sp := tinySpace("k3e3", "k5e6", "zero")
	p := mustPlan(t, sp)
	d := Data{Train: synthDataset(p, 40, 1), Held: synthDataset(p, 16, 2), Norm: data.Normalization{Mean: []float32{0.5}, Std: []float32{0.25}}, Aug: &data.Augment{Pad: 1, Flip: true}}
	tab := MACTable(p, 1000)

	cfg.TrainEpochs = 1

	full, err := New(p, cfg, tab)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	if err := full.Run(context.Background(), d, Hooks{}); err != nil {
		t.Fatal(err)
	}
	if full.Position().ArchSteps == 0 || full.Position().WeightSteps != 20 {
		t.Fatalf("schedule ran %+v, want 20 weight steps and some architecture steps", full.Position())
	}

	// Stopped in a search epoch and in the train epoch.
	for _, stopAt := range []int{8, 17} {
		part, err := New(p, cfg, tab)
		if err != nil {
			t.Fatal(err)
		}
		steps := 0
		err = part.Run(context.Background(), d, Hooks{Step: func(StepInfo) error {
			steps++
			if steps == stopAt {
				return errStop
			}
			return nil
		}})
		if !errors.Is(err, errStop) {
			t.Fatalf("run: %v, want the hook's error", err)
		}
		path := filepath.Join(t.TempDir(), "search.ckpt")
		if err := part.Save(path); err != nil {
			t.Fatal(err)
		}
		part.Close()
		// Resumed on a differently configured backend (one worker, ops
		// one at a time): where a search runs does not change what it
		// computes.
		resumed, err := LoadOn(path, tab, Placement{Backend: resumeOn, Parallelism: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer resumed.Close()
		if err := resumed.Run(context.Background(), d, Hooks{}); err != nil {
			t.Fatal(err)
		}
		if resumed.Position() != full.Position() {
			t.Fatalf("stopped at %d: position %+v, want %+v", stopAt, resumed.Position(), full.Position())
		}
		for l := range full.alpha {
			if !slices.Equal(full.alpha[l], resumed.alpha[l]) || !slices.Equal(full.adamV[l], resumed.adamV[l]) {
				t.Fatalf("stopped at %d: layer %d: alpha %v / %v, want %v / %v", stopAt, l, resumed.alpha[l], resumed.adamV[l], full.alpha[l], full.adamV[l])
			}
		}
		for i, pf := range full.params.list {
			pr := resumed.params.list[i]
			if !slices.Equal(pf.w, pr.w) || !slices.Equal(pf.buf, pr.buf) {
				t.Fatalf("stopped at %d: tensor %s differs after resume", stopAt, pf.name)
			}
		}
	}
}

// TestTrainEpochs checks the epochs after the search: every step trains
// the argmax network (alpha frozen, no architecture steps, no other
// candidate touched), with the train learning rate, and the argmax
// network's loss falls.
func TestTrainEpochs(t *testing.T) {
	cfg := testConfig()
	cfg.WarmupEpochs, cfg.SearchEpochs, cfg.TrainEpochs = 1, 1, 3
	cfg.ArchEvery = 1
	cfg.ArchSkipEpoch0 = false
	cfg.TrainLR = 0.05
	sp := tinySpace("k3e3", "k5e6", "zero")
	p := mustPlan(t, sp)
	d := Data{Train: synthDataset(p, 40, 3), Held: synthDataset(p, 16, 4), Norm: data.Normalization{Mean: []float32{0.5}, Std: []float32{0.25}}}
	s := newTest(t, sp, cfg)
	var (
		alpha      [][]float64
		arg        []int
		before     EvalResult
		frozen     = map[string][]float32{}
		trainSteps int
		epochs     []EpochInfo
	)
	h := Hooks{
		Step: func(si StepInfo) error {
			if !si.Train {
				return nil
			}
			trainSteps++
			if si.Arch != nil {
				t.Errorf("step %d: an architecture step in a train epoch", si.Position.WeightSteps)
			}
			if !slices.Equal(si.Weight.Choice, arg) {
				t.Errorf("step %d: trained %v, want the argmax %v", si.Position.WeightSteps, si.Weight.Choice, arg)
			}
			want := cfg.LearningRate(si.Position.Epoch, si.Position.Iter-1, 5)
			if si.Weight.LR != want || want > cfg.TrainLR {
				t.Errorf("step %d: lr %v, want %v (cosine from TrainLR)", si.Position.WeightSteps, si.Weight.LR, want)
			}
			return nil
		},
		Epoch: func(ei EpochInfo) error {
			epochs = append(epochs, ei)
			if ei.Epoch == 1 { // the search is over: freeze what must not change
				alpha, arg = s.Alpha(), s.Argmax()
				var err error
				if before, err = s.Evaluate(d.Train, d.Norm, arg, false); err != nil {
					return err
				}
				for _, prm := range s.params.list {
					frozen[prm.name] = slices.Clone(prm.w)
				}
			}
			return nil
		},
	}
	if err := s.Run(context.Background(), d, h); err != nil {
		t.Fatal(err)
	}
	if trainSteps != 15 || len(epochs) != 5 || !epochs[4].Train || epochs[1].Train {
		t.Fatalf("%d train steps, %d epochs (last train: %v), want 15 and 5", trainSteps, len(epochs), epochs[len(epochs)-1].Train)
	}
	if !slices.EqualFunc(alpha, s.Alpha(), slices.Equal) {
		t.Errorf("alpha changed in the train epochs")
	}
	// a tensor is on the argmax path unless it belongs to another candidate
	chosen := map[string]bool{}
	for l, layer := range p.Layers {
		for j, c := range layer.Candidates {
			chosen[candPrefix(layer, c)+"."] = j == arg[l]
		}
	}
	onPath := func(name string) bool {
		for prefix, ok := range chosen {
			if strings.HasPrefix(name, prefix) {
				return ok
			}
		}
		return true
	}
	for _, prm := range s.params.list {
		if changed := !slices.Equal(frozen[prm.name], prm.w); changed != onPath(prm.name) {
			t.Errorf("tensor %s: changed %v, on the argmax path %v", prm.name, changed, onPath(prm.name))
		}
	}
	after, err := s.Evaluate(d.Train, d.Norm, arg, false)
	if err != nil {
		t.Fatal(err)
	}
	if !(after.Loss < before.Loss) {
		t.Errorf("argmax network's training loss %v -> %v, want it to fall", before.Loss, after.Loss)
	}
	t.Logf("argmax %v: training loss %.3f -> %.3f, accuracy %.2f -> %.2f", s.ChoiceNames(arg), before.Loss, after.Loss, before.Accuracy, after.Accuracy)
}

// TestDeriveMatchesSupernet derives the argmax network and checks it with
// the IR's reference interpreter against the supernet's own forward pass
// (BN with running statistics), that Zero layers are dropped, and that the
// IR's latency keys are the ones the latency model used.
func TestDeriveMatchesSupernet(t *testing.T) {
	for _, share := range []string{ShareNone, ShareNested} {
		t.Run("share="+share, func(t *testing.T) { testDeriveMatchesSupernet(t, share) })
	}
}

func testDeriveMatchesSupernet(t *testing.T, share string) {
	cfg := testConfig()
	cfg.Sharing = share
	cfg.LatencyLoss = LossAddLinear
	cfg.TargetLatency = 30
	s := newTest(t, tinySpace("k3e3", "k5e6", "zero"), cfg)
	rng := rand.New(rand.NewPCG(14, 15))
	x, y := synthBatch(s.Plan(), 8, rng)
	for i := 0; i < 3; i++ {
		if _, err := s.WeightStep(x, y, 0.05, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, choice := range [][]int{{1, 2}, {0, 1}} {
		m, err := s.DeriveChoice(choice, DeriveOptions{Labels: []string{"a", "b", "c"}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := interp.Run(m, x, len(y))
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.runNet(x, y, netRun{choice: choice, bnInference: true})
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if math.Abs(float64(got[i])-out.logits[i]) > 1e-4*math.Max(1, math.Abs(out.logits[i])) {
				t.Fatalf("choice %v: logit %d: interpreter %g, supernet %g", choice, i, got[i], out.logits[i])
			}
		}
		blocks, err := archnet.Blocks(m)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, b := range blocks {
			keys = append(keys, b.Key)
		}
		want := []string{s.plan.StemKey(), s.plan.FirstKey()}
		for l, j := range choice {
			if k := s.lat.Keys[l][j]; k != "" {
				want = append(want, k)
			}
		}
		want = append(want, s.plan.HeadKey(), s.plan.LogitsKey())
		if !slices.Equal(keys, want) {
			t.Fatalf("choice %v: IR latency keys\n%q\nwant\n%q", choice, keys, want)
		}
		if m.Metadata.Search == nil || m.Metadata.Search.ExpectedLatencyUS != s.lat.Of(choice) {
			t.Fatalf("choice %v: metadata %+v", choice, m.Metadata.Search)
		}
	}
}

// TestImageNetMobileSupernet builds the paper's space's supernet and
// derives a network from it (no training: 224x224 steps are too slow for a
// unit test).
func TestImageNetMobileSupernet(t *testing.T) {
	p := mustPlan(t, space.ImageNetMobile())
	cfg := testConfig()
	cfg.LatencyLoss = LossMulLog
	cfg.TargetLatency = 80e3
	s, err := New(p, cfg, MACTable(p, 250))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := s.Derive(DeriveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if want := ArchMACs(p, s.Argmax()); st.MACs < want*99/100 || st.MACs > want*101/100 {
		t.Errorf("derived network: %d MACs, want about %d", st.MACs, want)
	}
}

// TestRunSchedule checks the schedule's bookkeeping: warm-up then search
// epochs, no architecture steps in the first search epoch, warm-up paths
// drawn uniformly (alpha untouched), and the per-epoch report.
func TestRunSchedule(t *testing.T) {
	cfg := testConfig()
	cfg.WarmupEpochs, cfg.SearchEpochs = 1, 1
	cfg.LatencyLoss = LossAddLinear
	cfg.TargetLatency = 30
	sp := tinySpace()
	p := mustPlan(t, sp)
	s, err := New(p, cfg, MACTable(p, 1000))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	alpha0 := s.Alpha()
	d := Data{Train: synthDataset(p, 24, 3), Held: synthDataset(p, 10, 4)}
	var epochs []EpochInfo
	warmSteps := 0
	err = s.Run(context.Background(), d, Hooks{
		Step: func(si StepInfo) error {
			if si.Warmup {
				warmSteps++
			}
			if si.Arch != nil {
				t.Errorf("architecture step in the first search epoch at %+v", si.Position)
			}
			return nil
		},
		Epoch: func(ei EpochInfo) error { epochs = append(epochs, ei); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if warmSteps != 3 || s.Position().WeightSteps != 6 || s.Position().ArchSteps != 0 {
		t.Fatalf("warm-up steps %d, position %+v; want 3 warm-up of 6 steps and no architecture step", warmSteps, s.Position())
	}
	for l := range alpha0 {
		if !slices.Equal(alpha0[l], s.alpha[l]) {
			t.Fatalf("alpha changed without architecture steps")
		}
	}
	if len(epochs) != 2 || !epochs[0].Warmup || epochs[1].Warmup {
		t.Fatalf("epoch reports %d, warm-up flags wrong", len(epochs))
	}
	for _, ei := range epochs {
		if ei.Eval.N != 10 || ei.Eval.Accuracy < 0 || ei.Eval.Accuracy > 1 || math.IsNaN(ei.Eval.Loss) {
			t.Errorf("epoch %d: evaluation %+v", ei.Epoch, ei.Eval)
		}
		if len(ei.Entropy) != len(p.Layers) || ei.ArgmaxLatency != s.lat.Of(s.Argmax()) || ei.ArgmaxMACs != ArchMACs(p, s.Argmax()) {
			t.Errorf("epoch %d: report %+v", ei.Epoch, ei)
		}
		for l, h := range ei.Entropy {
			if maxH := math.Log(float64(len(p.Layers[l].Candidates))); h < 0 || h > maxH+1e-9 {
				t.Errorf("epoch %d layer %d: entropy %g outside [0, %g]", ei.Epoch, l, h, maxH)
			}
		}
	}
	ev, err := s.Evaluate(d.Held, d.Norm, s.Argmax(), true)
	if err != nil || ev.N != 10 {
		t.Fatalf("evaluate with running statistics: %+v, %v", ev, err)
	}
}
