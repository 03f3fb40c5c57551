package onnx

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/pnasml/pnas/ir"
)

var update = flag.Bool("update", false, "rewrite the exported models and their inputs in testdata/ (then run `make onnx-ref` for ONNX Runtime's outputs)")

// Exported models in ONNX Runtime. testdata/export_NAME.pnas.onnx is
// Export's output for two builder-made models (tiny: an MBConv net with
// softmax; fused: every fused epilogue of the IR), export_NAME.input.bin a
// batch-2 input and export_NAME.ort_output.bin ONNX Runtime 1.30's logits
// for that input (ir/onnx/testdata/run_onnx.js). `make onnx-ref` rewrites
// all three: `go test -run TestExportsRunInORT -update` the first two, then
// ONNX Runtime the third.

// ortExports are the models whose exports are checked against ONNX Runtime.
func ortExports(t testing.TB) []*ir.Model {
	return []*ir.Model{tinyNet(t), fusedNet(t)}
}

// exportInput is a deterministic batch of n inputs for m, in [-2, 6).
func exportInput(m *ir.Model, n int) []float32 {
	x := make([]float32, n*numel(m.Input.Shape))
	for i := range x {
		x[i] = float32((i*7919)%1000)/125 - 2
	}
	return x
}

// TestExportsRunInORT checks that each model's export is the file ONNX
// Runtime ran and that ONNX Runtime's logits on it match the reference
// interpreter's on the model.
func TestExportsRunInORT(t *testing.T) {
	const n = 2
	for _, m := range ortExports(t) {
		e, err := Export(m)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Join("testdata", "export_"+m.Name)
		x := exportInput(m, n)
		if *update {
			if err := os.WriteFile(base+".pnas.onnx", e, 0o644); err != nil {
				t.Fatal(err)
			}
			writeF32(t, base+".input.bin", x)
			continue
		}
		golden, err := os.ReadFile(base + ".pnas.onnx")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(e, golden) {
			t.Errorf("%s: Export's output differs from %s.pnas.onnx, the file ONNX Runtime's reference output was computed on; if the change is intended, run `make onnx-ref`", m.Name, base)
			continue
		}
		if r := relDiff(t, readF32(t, base+".input.bin"), x); r != 0 {
			t.Errorf("%s: %s.input.bin is not the input the test computes; run `make onnx-ref`", m.Name, base)
			continue
		}
		got := run(t, m, x, n)
		r := relDiff(t, got, readF32(t, base+".ort_output.bin"))
		t.Logf("%s: %d-byte export, max|interp-ort|/max|ort| = %.3g", m.Name, len(e), r)
		if r > refTolerance {
			t.Errorf("%s: ONNX Runtime's output on the export differs from the interpreter's by %.3g (relative), tolerance %g", m.Name, r, refTolerance)
		}
	}
}
