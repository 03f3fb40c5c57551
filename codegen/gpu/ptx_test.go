package gpu_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pnasml/pnas/codegen/gpu"
)

var update = flag.Bool("update", false, "rewrite testdata/*.ptx from the current printer")

// goldenKernels is one kernel of every kind.
func goldenKernels() []*gpu.Kernel {
	return []*gpu.Kernel{
		gpu.Conv("pw", gpu.ConvSpec{Cin: 24, H: 7, W: 7, Cout: 40, OH: 7, OW: 7, KH: 1, KW: 1, SH: 1, SW: 1, Groups: 1, Bias: true, Residual: true, Act: gpu.ActReLU6}),
		gpu.Conv("pw64", gpu.ConvSpec{Cin: 96, H: 14, W: 14, Cout: 576, OH: 14, OW: 14, KH: 1, KW: 1, SH: 1, SW: 1, Groups: 1, Bias: true, Act: gpu.ActReLU6}),
		gpu.Conv("dw_k5_s2", gpu.ConvSpec{Cin: 16, H: 14, W: 14, Cout: 16, OH: 7, OW: 7, KH: 5, KW: 5, SH: 2, SW: 2, PT: 2, PL: 2, Groups: 16, Bias: true, Act: gpu.ActReLU6}),
		gpu.Pool("pool", 32, 49),
		gpu.Linear("fc", 32, 10, true, gpu.ActNone),
		gpu.Softmax("softmax", 10),
	}
}

// TestPTXGolden compares the printed PTX of goldenKernels with
// testdata/kernels-sm90.ptx (go test ./codegen/gpu -update rewrites it)
// and checks that printing is deterministic and names the ISA and target.
func TestPTXGolden(t *testing.T) {
	got, err := gpu.PTX(gpu.SM90, goldenKernels())
	if err != nil {
		t.Fatal(err)
	}
	again, _ := gpu.PTX(gpu.SM90, goldenKernels())
	if got != again {
		t.Fatal("PTX printing is not deterministic")
	}
	for _, want := range []string{".version 7.8\n", ".target sm_90\n", ".address_size 64\n", "bar.sync 0", "fma.rn.f32", "ld.shared.f32", ".shared .align 16 .f32 pw_s0[256]"} {
		if !strings.Contains(got, want) {
			t.Errorf("PTX lacks %q", want)
		}
	}
	file := filepath.Join("testdata", "kernels-sm90.ptx")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (go test ./codegen/gpu -update writes it)", err)
	}
	if string(want) != got {
		t.Errorf("%s is stale: go test ./codegen/gpu -update rewrites it", file)
	}
	sm80, err := gpu.PTX(gpu.SM80, goldenKernels())
	if err != nil || strings.Replace(sm80, ".target sm_80", ".target sm_90", 1) != got {
		t.Errorf("sm_80 module differs from sm_90 in more than .target (%v)", err)
	}
}

// TestCheckRejects checks the type checker of the kernel IR.
func TestCheckRejects(t *testing.T) {
	k := &gpu.Kernel{Name: "bad", Threads: 32, Ptrs: []string{"out"}}
	k.Body = []gpu.Stmt{gpu.Store{P: 0, Idx: gpu.Float(1), Val: gpu.Float(0)}}
	if err := k.Check(); err == nil {
		t.Error("a float index passed the check")
	}
	k.Body = []gpu.Stmt{gpu.Store{P: 1, Idx: gpu.Int(0), Val: gpu.Float(0)}}
	if err := k.Check(); err == nil {
		t.Error("an undeclared pointer passed the check")
	}
}
