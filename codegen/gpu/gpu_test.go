package gpu_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/pnasml/pnas/codegen/gpu"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/interp"
	"github.com/pnasml/pnas/ir/pass"
)

func randn(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// close reports the largest error of got against want relative to
// max(1, |want|).
func maxRelErr(got, want []float32) float64 {
	worst := 0.0
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		worst = max(worst, d/max(1, math.Abs(float64(want[i]))))
	}
	return worst
}

// checkModel runs m (after the passes) in the emulator and the
// interpreter on a batch of n.
func checkModel(t *testing.T, m *ir.Model, n int) {
	t.Helper()
	om, err := pass.Apply(m, pass.Options{})
	if err != nil {
		t.Fatal(err)
	}
	net, err := gpu.Lower(om)
	if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	x := randn(rand.New(rand.NewPCG(uint64(n), 5)), n*net.Input.Len)
	want, err := interp.Run(m, x, n)
	if err != nil {
		t.Fatal(err)
	}
	got, err := net.Emulate(x, n)
	if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	if e := maxRelErr(got, want); e > 1e-4 {
		t.Errorf("%s batch %d: emulated output differs from the interpreter by %.3g (relative)", m.Name, n, e)
	}
}
