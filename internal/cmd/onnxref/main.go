// Command onnxref checks ONNX import and export against reference outputs
// of independent engines, including models too large to commit: the
// MobileNetV2-224 models of the ONNX Runtime harness (bench/ort,
// NAME.onnx with NAME.ref_input.bin and NAME.ref_output.bin) and of
// PyTorch's exporter (ir/onnx/testdata/export_torch.py, TAG_VARIANT.onnx
// with TAG.input.bin and TAG.torch_output.bin). The small models committed
// in ir/onnx/testdata are always checked; -ort and -torch add the large
// ones.
//
// For each model it imports the file, checks the IR op count, runs the
// reference interpreter (ir/interp) on the saved input and compares with
// the engine's saved output, then does the same after Export and a second
// Import. The measure is max|a-b| / max|b| over all logits, tolerance 1e-4.
// With -export DIR it also writes, for each model, NAME.pnas.onnx (the
// re-export), NAME.pnas.input.bin and NAME.pnas.interp.bin (the
// interpreter's output) for ir/onnx/testdata/run_onnx.js to run in ONNX
// Runtime. Run it from the repository root; docs/onnx.md has the commands.
// It exits 1 when a model fails.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/pnasml/pnas/ir/interp"
	"github.com/pnasml/pnas/ir/onnx"
)

// tolerance bounds max|a-b| / max|b| against the reference logits.
const tolerance = 1e-4

// reference is one model file with a saved input (n samples) and the
// engine's output on it.
type reference struct {
	engine, model, input, output string
	n, ops                       int
}

func ortRef(dir, name string, ops int) reference {
	p := filepath.Join(dir, name)
	return reference{"ONNX Runtime", p + ".onnx", p + ".ref_input.bin", p + ".ref_output.bin", 1, ops}
}

func torchRef(dir, tag, variant string, ops int) reference {
	p := filepath.Join(dir, tag)
	return reference{"PyTorch", p + "_" + variant + ".onnx", p + ".input.bin", p + ".torch_output.bin", 2, ops}
}

// committedRefs are the small reference models committed in dir.
func committedRefs(dir string) []reference {
	return []reference{
		ortRef(dir, "mbconv_fmnist28", 40),
		torchRef(dir, "torch_small", "op13_eval", 33),
		torchRef(dir, "torch_small", "op9_preserve", 49),
	}
}

func main() {
	ortDir := flag.String("ort", "", "bench/ort models directory (out/bench/models) (mbconv_fmnist28, mobilenetv2_224 with .ref_input.bin/.ref_output.bin)")
	torchDir := flag.String("torch", "", "export_torch.py output directory (torch_mbv2_*)")
	exportDir := flag.String("export", "", "write each model's re-export, input and interpreter output here")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "onnxref: unexpected arguments; usage: onnxref [-ort DIR] [-torch DIR] [-export DIR]")
		os.Exit(2)
	}
	refs := committedRefs("ir/onnx/testdata")
	if *ortDir != "" {
		refs = append(refs, ortRef(*ortDir, "mobilenetv2_224", 100))
	}
	if *torchDir != "" {
		refs = append(refs, torchRef(*torchDir, "torch_mbv2", "op13_eval", 100), torchRef(*torchDir, "torch_mbv2", "op9_preserve", 152))
	}
	if *exportDir != "" {
		if err := os.MkdirAll(*exportDir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "onnxref:", err)
			os.Exit(1)
		}
	}
	failed := 0
	for _, r := range refs {
		if err := check(r, *exportDir); err != nil {
			fmt.Fprintf(os.Stderr, "onnxref: %s: %v\n", r.model, err)
			failed++
		}
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "onnxref: %d of %d models failed\n", failed, len(refs))
		os.Exit(1)
	}
}

// check imports r.model and compares the interpreter's output with the
// engine's, before and after an Export and Import round trip.
func check(r reference, exportDir string) error {
	b, err := os.ReadFile(r.model)
	if err != nil {
		return err
	}
	x, err := readF32(r.input)
	if err != nil {
		return err
	}
	want, err := readF32(r.output)
	if err != nil {
		return err
	}
	m, err := onnx.Import(b, onnx.Options{})
	if err != nil {
		return err
	}
	if len(m.Ops) != r.ops {
		return fmt.Errorf("%d IR ops, expected %d", len(m.Ops), r.ops)
	}
	if per := numel(m.Input.Shape); len(x) != r.n*per {
		return fmt.Errorf("reference input has %d values, expected %d samples of %v", len(x), r.n, m.Input.Shape)
	}
	got, err := interp.Run(m, x, r.n)
	if err != nil {
		return err
	}
	d1, err := relDiff(got, want)
	if err != nil {
		return err
	}
	e, err := onnx.Export(m)
	if err != nil {
		return err
	}
	back, err := onnx.Import(e, onnx.Options{})
	if err != nil {
		return fmt.Errorf("importing the export: %v", err)
	}
	got2, err := interp.Run(back, x, r.n)
	if err != nil {
		return err
	}
	d2, err := relDiff(got2, want)
	if err != nil {
		return err
	}
	fmt.Printf("%-32s %-12s %4d ops %4d weights  interp vs engine %.2g  after Export+Import %.2g\n",
		filepath.Base(r.model), r.engine, len(m.Ops), len(m.Params), d1, d2)
	if d1 > tolerance || d2 > tolerance {
		return fmt.Errorf("differs from the %s reference by %.3g (after Export and Import %.3g), tolerance %g", r.engine, d1, d2, tolerance)
	}
	if exportDir == "" {
		return nil
	}
	base := filepath.Join(exportDir, strings.TrimSuffix(filepath.Base(r.model), ".onnx")+".pnas")
	if err := os.WriteFile(base+".onnx", e, 0o644); err != nil {
		return err
	}
	if err := writeF32(base+".input.bin", x); err != nil {
		return err
	}
	return writeF32(base+".interp.bin", got)
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// relDiff is max|a-b| / max|b|.
func relDiff(a, b []float32) (float64, error) {
	if len(a) != len(b) {
		return 0, fmt.Errorf("output has %d values, the reference %d", len(a), len(b))
	}
	var d, m float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
		m = max(m, math.Abs(float64(b[i])))
	}
	if m == 0 {
		return d, nil
	}
	return d / m, nil
}

func readF32(path string) ([]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%s: %d bytes is not a whole number of float32 values", path, len(b))
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}

func writeF32(path string, v []float32) error {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return os.WriteFile(path, b, 0o644)
}
