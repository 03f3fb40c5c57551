package targets_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	searchspace "github.com/pnasml/pnas/search/space"
	"github.com/pnasml/pnas/targets"
)

// Compile-time check: LUT and its corrected view are what the search
// consumes.
var (
	_ interface {
		ID() string
		Lookup(string) (float64, bool)
	} = (*targets.LUT)(nil)
	_ interface {
		ID() string
		Lookup(string) (float64, bool)
	} = (*targets.CorrectedTable)(nil)
)

// wantErr fails unless err is non-nil and its message contains every part.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected an error containing %q, got nil", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}

func fieldOf(err error) string {
	var e *targets.Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// space is a small synthetic search space: a stem, stages of MBConv layers
// with six candidates each, a head and the logits.
type space struct {
	fixed  []string   // keys every network has
	layers [][]string // candidate keys per searchable layer
}

func newSpace() *space {
	sp := &space{fixed: []string{
		searchspace.StemKey(searchspace.Shape{H: 28, W: 28, C: 1}, searchspace.Shape{H: 28, W: 28, C: 16}),
		searchspace.HeadKey(searchspace.Shape{H: 7, W: 7, C: 64}, searchspace.Shape{H: 7, W: 7, C: 256}),
		searchspace.LogitsKey(searchspace.Shape{H: 7, W: 7, C: 256}, 10),
	}}
	in := searchspace.Shape{H: 28, W: 28, C: 16}
	for _, st := range []struct{ c, stride, n int }{{24, 2, 3}, {40, 1, 3}, {64, 2, 3}} {
		for l := 0; l < st.n; l++ {
			stride := 1
			if l == 0 {
				stride = st.stride
			}
			out := searchspace.Shape{H: (in.H + stride - 1) / stride, W: (in.W + stride - 1) / stride, C: st.c}
			var cands []string
			for _, k := range []int{3, 5, 7} {
				for _, e := range []int{3, 6} {
					cands = append(cands, searchspace.MBConvKey(in, out, e, k, stride, stride == 1 && in.C == out.C))
				}
			}
			sp.layers = append(sp.layers, cands)
			in = out
		}
	}
	return sp
}

func (sp *space) allKeys() []string {
	keys := append([]string(nil), sp.fixed...)
	for _, l := range sp.layers {
		keys = append(keys, l...)
	}
	return keys
}

// baseCost gives each key a deterministic latency in µs.
func baseCost(sp *space, rng *rand.Rand) map[string]float64 {
	cost := map[string]float64{}
	for i, k := range sp.allKeys() {
		cost[k] = 20 + 80*rng.Float64() + float64(i%7)
	}
	return cost
}

// sample draws a network: one candidate per layer.
func (sp *space) sample(rng *rand.Rand) []string {
	keys := []string{sp.fixed[0]}
	for _, l := range sp.layers {
		keys = append(keys, l[rng.IntN(len(l))])
	}
	return append(keys, sp.fixed[1], sp.fixed[2])
}

// report builds a bench report of a network whose layer latencies are
// layerUS (µs) and whose total median is totalUS.
func report(model string, keys []string, layerUS []float64, totalUS float64, runs int) *targets.BenchReport {
	r := &targets.BenchReport{
		Schema: targets.BenchSchema, Model: model, ModelID: fmt.Sprintf("%x", len(model)*7919) + model,
		Target: "amd64", KernelSet: "avx2", CPU: "Test CPU @ 3.0GHz", Cores: 4,
		GOOS: "linux", GOARCH: "amd64", GoVersion: "go1.26.8", Threads: 1, Runs: runs, Warmup: 10,
	}
	for i, k := range keys {
		ns := layerUS[i] * 1e3
		r.Layers = append(r.Layers, targets.LayerTiming{
			Name: fmt.Sprintf("block%d", i), Key: k, Ops: []string{fmt.Sprintf("block%d.conv", i)},
			Timing: targets.Timing{MedianNS: ns, P90NS: ns * 1.05, MeanNS: ns * 1.01, VarNS2: (0.02 * ns) * (0.02 * ns)},
		})
	}
	tot := totalUS * 1e3
	r.Total = targets.Timing{MedianNS: tot, P90NS: tot * 1.04, MeanNS: tot * 1.01, VarNS2: (0.02 * tot) * (0.02 * tot)}
	return r
}

// table builds a valid LUT from per-key costs.
func table(cost map[string]float64) *targets.LUT {
	l := &targets.LUT{
		Target: "amd64", Space: "synthetic", Machine: targets.Machine{CPU: "Test CPU @ 3.0GHz", Cores: 4},
		GoVersion: "go1.26.8", KernelSet: "avx2", Threads: 1, Entries: map[string]targets.Entry{},
	}
	for k, v := range cost {
		l.Entries[k] = targets.Entry{MeanUS: v * 1.01, VarUS2: 0.04 * v * v / 100, Count: 100, MedianUS: v}
	}
	return l
}

func approx(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }
