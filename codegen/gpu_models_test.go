package codegen_test

import (
	"math"
	"testing"

	"github.com/pnasml/pnas/codegen/gpu"
	"github.com/pnasml/pnas/ir/interp"
	"github.com/pnasml/pnas/ir/pass"
)

// TestGPUSuite runs every model of the suite (the random architectures
// and the edge cases) through the GPU kernels in the emulator, at batch 1
// and, for every fifth model, batch 2, against the reference interpreter.
func TestGPUSuite(t *testing.T) {
	for i, m := range suite(t) {
		om, err := pass.Apply(m, pass.Options{})
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		net, err := gpu.Lower(om)
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		batches := []int{1}
		if i%5 == 0 {
			batches = append(batches, 2)
		}
		for _, n := range batches {
			x := randomSamples(m, n, uint64(i))
			want, err := interp.Run(m, x, n)
			if err != nil {
				t.Fatal(err)
			}
			got, err := net.Emulate(x, n)
			if err != nil {
				t.Fatalf("%s batch %d: %v", m.Name, n, err)
			}
			worst := 0.0
			for j := range want {
				d := math.Abs(float64(got[j])-float64(want[j])) / max(1, math.Abs(float64(want[j])))
				if !(d <= worst) {
					worst = d
				}
			}
			if !(worst <= 1e-4) {
				t.Errorf("%s batch %d: the emulated GPU kernels differ from the interpreter by %.3g (relative)", m.Name, n, worst)
			}
		}
	}
}
