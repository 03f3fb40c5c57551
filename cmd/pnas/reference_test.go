package main

import (
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func readF32(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// The 28x28 MBConv reference model built by the ONNX Runtime harness
// imports, compiles (best kernels of this machine, pure Go, and arm64 NEON
// run under qemu-aarch64-static) and gives ONNX Runtime's saved logits
// within 1e-4 relative.
func TestCompiledMatchesONNXRuntime(t *testing.T) {
	dir := t.TempDir()
	td := "../../ir/onnx/testdata/"
	js := filepath.Join(dir, "ref.json")
	if code, _, errs := runCLI(t, "import", td+"mbconv_fmnist28.onnx", "-o", js); code != 0 {
		t.Fatalf("import: %s", errs)
	}
	want := readF32(t, td+"mbconv_fmnist28.ref_output.bin")
	for _, target := range []string{"", "generic", "arm64"} {
		args := []string{"compile", js, "-o", filepath.Join(dir, "out"+target)}
		if target != "" {
			args = append(args, "--target", target)
		}
		code, out, errs := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("compile %v: %s", args, errs)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		bin := lines[len(lines)-1]
		dump := filepath.Join(dir, "logits"+target+".bin")
		run := []string{bin, "-input", td + "mbconv_fmnist28.ref_input.bin", "-dump-output", dump}
		if target == "arm64" {
			qemu, err := exec.LookPath("qemu-aarch64-static")
			if err != nil {
				t.Fatal("qemu-aarch64-static not installed (make deps-apt installs Debian's qemu-user-static)")
			}
			run = append([]string{qemu}, run...)
		}
		if o, err := exec.Command(run[0], run[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", bin, err, o)
		}
		got := readF32(t, dump)
		if len(got) != len(want) {
			t.Fatalf("%d logits, want %d", len(got), len(want))
		}
		var maxDiff, maxRef float64
		for i := range got {
			maxDiff = math.Max(maxDiff, math.Abs(float64(got[i]-want[i])))
			maxRef = math.Max(maxRef, math.Abs(float64(want[i])))
		}
		if rel := maxDiff / maxRef; rel > 1e-4 {
			t.Errorf("target %q: logits differ from ONNX Runtime by %.2e relative", target, rel)
		} else {
			t.Logf("target %q: max |diff| / max |ref| = %.2e", target, rel)
		}
	}
}
