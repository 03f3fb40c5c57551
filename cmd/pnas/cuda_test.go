package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pnasml/pnas/targets"
)

// TestCompileCUDA compiles a model for the cuda target on this machine (no
// CUDA toolkit or driver needed): PTX for both architectures and a program
// that, without a driver, says so on one line and exits with status 1.
func TestCompileCUDA(t *testing.T) {
	path := smallModel(t)
	dir := filepath.Join(t.TempDir(), "g")
	code, out, errs := runCLI(t, "compile", path, "--target", "cuda", "-o", dir)
	if code != 0 {
		t.Fatalf("compile failed (%d): %s", code, errs)
	}
	bin := lastLine(out)
	if bin != filepath.Join(dir, "model") || !strings.Contains(out, "target cuda: cuda kernels") {
		t.Fatalf("output:\n%s", out)
	}
	for _, f := range []string{"kernels_sm80.ptx", "kernels_sm90.ptx", "go.mod", "go.sum", "weights.bin"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	tg, err := targets.Lookup("cuda")
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join("..", "..", "data", "fmnist", "t10k-images-idx3-ubyte.gz")
	cmd := exec.Command(bin, "-input", img, "-index", "7")
	res, _ := cmd.CombinedOutput()
	if tg.HostSupports() != nil {
		if cmd.ProcessState.ExitCode() != 1 || string(res) != "model: no CUDA driver: libcuda.so.1 not found\n" {
			t.Errorf("without a driver: status %d, output %q", cmd.ProcessState.ExitCode(), res)
		}
	} else if code := cmd.ProcessState.ExitCode(); code != 0 && (code != 1 || strings.Count(string(res), "\n") != 1) {
		t.Errorf("with a driver: status %d, output %q", code, res)
	}
}
