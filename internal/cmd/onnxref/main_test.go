package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The check passes on the committed models and writes their re-exports,
// and fails when the reference output is not the engine's.
func TestCheckCommitted(t *testing.T) {
	out := t.TempDir()
	for _, r := range committedRefs(filepath.Join("..", "..", "..", "ir", "onnx", "testdata")) {
		if err := check(r, out); err != nil {
			t.Errorf("%s: %v", r.model, err)
		}
	}
	for _, f := range []string{"mbconv_fmnist28.pnas.onnx", "torch_small_op9_preserve.pnas.input.bin", "torch_small_op13_eval.pnas.interp.bin"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("export directory lacks %s", f)
		}
	}
	r := committedRefs(filepath.Join("..", "..", "..", "ir", "onnx", "testdata"))[0]
	want, err := readF32(r.output)
	if err != nil {
		t.Fatal(err)
	}
	want[3] += 1e-3 // off by about 1e-3 relative
	r.output = filepath.Join(out, "off.bin")
	if err := writeF32(r.output, want); err != nil {
		t.Fatal(err)
	}
	if err := check(r, ""); err == nil {
		t.Error("a reference output off by 1e-3 passed the check")
	}
}
