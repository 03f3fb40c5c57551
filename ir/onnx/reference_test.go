package onnx

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pnasml/pnas/ir"
)

// Reference models and outputs from two independent engines (docs/onnx.md):
//   - ONNX Runtime: models built by the bench/ort harness
//     (build_models.js); bench.js --ref saves a batch-1 input and ONNX
//     Runtime's logits as NAME.ref_input.bin / NAME.ref_output.bin.
//   - PyTorch: testdata/export_torch.py exports a MobileNetV2-style network
//     with PyTorch's ONNX exporter and saves a batch-2 input and PyTorch's
//     logits as TAG.input.bin / TAG.torch_output.bin.

// refTolerance bounds max|a-b| / max|b| against the reference logits.
const refTolerance = 1e-4

// checkReference imports model, runs the reference interpreter on the
// saved input (n samples) and compares with the saved output; then the
// same for the model after Export and a second Import.
func checkReference(t *testing.T, model, input, output string, n, wantOps int) {
	t.Helper()
	b, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	x := readF32(t, input)
	want := readF32(t, output)
	m, err := Import(b, Options{})
	if err != nil {
		t.Fatalf("%s: %v", model, err)
	}
	if len(m.Ops) != wantOps {
		t.Errorf("%s: %d IR ops, want %d", model, len(m.Ops), wantOps)
	}
	if len(x) != n*numel(m.Input.Shape) {
		t.Fatalf("%s: reference input has %d values, expected %d samples of %v", model, len(x), n, m.Input.Shape)
	}
	r := relDiff(t, run(t, m, x, n), want)
	t.Logf("%s: %d ops, %d weights, max|interp-ref|/max|ref| = %.3g", filepath.Base(model), len(m.Ops), len(m.Params), r)
	if r > refTolerance {
		t.Errorf("%s: interpreter differs from the reference by %.3g (relative), tolerance %g", model, r, refTolerance)
	}
	e, err := Export(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Import(e, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := relDiff(t, run(t, back, x, n), want); r > refTolerance {
		t.Errorf("%s: after Export and Import: differs from the reference by %.3g", model, r)
	}
}

func ortModel(t *testing.T, dir, name string, ops int) {
	p := filepath.Join(dir, name)
	checkReference(t, p+".onnx", p+".ref_input.bin", p+".ref_output.bin", 1, ops)
}

func torchModel(t *testing.T, dir, tag, variant string, ops int) {
	p := filepath.Join(dir, tag)
	checkReference(t, p+"_"+variant+".onnx", p+".input.bin", p+".torch_output.bin", 2, ops)
}

// The 6-block MBConv net for 28x28 inputs (ONNX Runtime reference).
func TestReferenceORTMBConv28(t *testing.T) {
	ortModel(t, "testdata", "mbconv_fmnist28", 40)
}

// A small MobileNetV2-style net exported by PyTorch 1.13: opset 13 with BN
// folded into Conv and Clip bounds from Constant nodes, and opset 9 with BN
// kept and Clip bounds as attributes (PyTorch reference).
func TestReferenceTorchSmall(t *testing.T) {
	torchModel(t, "testdata", "torch_small", "op13_eval", 33)
	torchModel(t, "testdata", "torch_small", "op9_preserve", 49)
}

// MobileNetV2-224 (14 MB) is not committed. PNAS_ORT_MODELS names the
// bench/ort models directory (out/bench/models), PNAS_TORCH_MODELS the export_torch.py output
// directory (docs/onnx.md).
func TestReferenceMobileNetV2(t *testing.T) {
	ortDir, torchDir := os.Getenv("PNAS_ORT_MODELS"), os.Getenv("PNAS_TORCH_MODELS")
	if ortDir == "" && torchDir == "" {
		t.Skip("PNAS_ORT_MODELS and PNAS_TORCH_MODELS are not set (see docs/onnx.md)")
	}
	if ortDir != "" {
		ortModel(t, ortDir, "mbconv_fmnist28", 40)
		ortModel(t, ortDir, "mobilenetv2_224", 100)
	}
	if torchDir != "" {
		torchModel(t, torchDir, "torch_mbv2", "op13_eval", 100)
		torchModel(t, torchDir, "torch_mbv2", "op9_preserve", 152)
	}
}

// With PNAS_ONNX_EXPORT set to a directory, write exported models with an
// input and the reference interpreter's output, for running in ONNX
// Runtime (docs/onnx.md); MobileNetV2-224 too when PNAS_ORT_MODELS is set.
func TestWriteExportsForORT(t *testing.T) {
	dir := os.Getenv("PNAS_ONNX_EXPORT")
	if dir == "" {
		t.Skip("PNAS_ONNX_EXPORT is not set (see docs/onnx.md)")
	}
	models := []*ir.Model{tinyNet(t), fusedNet(t)}
	paths := []string{filepath.Join("testdata", "mbconv_fmnist28.onnx"), filepath.Join("testdata", "torch_small_op9_preserve.onnx")}
	if refs := os.Getenv("PNAS_ORT_MODELS"); refs != "" {
		paths = append(paths, filepath.Join(refs, "mobilenetv2_224.onnx"))
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Import(b, Options{})
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, m)
	}
	for _, m := range models {
		e, err := Export(m)
		if err != nil {
			t.Fatal(err)
		}
		const n = 2
		x := make([]float32, n*numel(m.Input.Shape))
		for i := range x {
			x[i] = float32((i*7919)%1000)/125 - 2 // deterministic, in [-2, 6)
		}
		base := filepath.Join(dir, m.Name+".pnas")
		if err := os.WriteFile(base+".onnx", e, 0o644); err != nil {
			t.Fatal(err)
		}
		writeF32(t, base+".input.bin", x)
		writeF32(t, base+".interp.bin", run(t, m, x, n))
	}
}

func BenchmarkImportMBConv28(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "mbconv_fmnist28.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Import(data, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExportMBConv28(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "mbconv_fmnist28.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	m, err := Import(data, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Export(m); err != nil {
			b.Fatal(err)
		}
	}
}
