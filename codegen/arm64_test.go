package codegen_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/pnasml/pnas/runtime"
	"github.com/pnasml/pnas/targets"
)

// TestARM64MatchesInterpreter compiles the suite for the arm64 target
// (NEON kernels) and runs it under qemu-aarch64-static: the program's bench
// header names the NEON kernel set, and the outputs of every random
// architecture and edge case match the interpreter within 1e-4, on the
// NEON kernels and on the pure-Go ones (-kernels go).
func TestARM64MatchesInterpreter(t *testing.T) {
	tg := target(t, "arm64")
	bin := buildSuite(t, tg, "")
	out, err := exec.Command("go", "version", bin).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "arm64") {
		t.Fatalf("go version %s: %v %s", bin, err, out)
	}
	qemu, err := exec.LookPath("qemu-aarch64-static")
	if err != nil {
		t.Fatal("qemu-aarch64-static not installed (make deps-apt installs Debian's qemu-user-static)")
	}
	out, err = exec.Command(qemu, bin, "-bench", "1", "-warmup", "0", "-json").Output()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := targets.ParseBench(out)
	if err != nil || rep.KernelSet != "neon" || rep.Target != "arm64" {
		t.Fatalf("bench report %v, %+v: want target arm64 on kernel set neon", err, rep)
	}
	t.Run("neon", func(t *testing.T) { checkAgainstInterp(t, bin, []string{qemu}, []string{"-kernels", "neon"}) })
	// The pure-Go twins in the same binary, on a subset.
	t.Run("go", func(t *testing.T) {
		checkSome(t, bin, []string{qemu}, []string{"-kernels", "go"}, func(i int) bool { return i%10 == 0 })
	})
}

// TestKernelSetsAgree checks that every CPU kernel set of presets.json is
// one the runtime can copy for a program (runtime.FilesForSet), and that
// the assembly it carries is for the set's architecture only.
func TestKernelSetsAgree(t *testing.T) {
	sets, err := targets.KernelSets()
	if err != nil {
		t.Fatal(err)
	}
	for _, ks := range sets {
		if ks.Device != "" && ks.Device != "cpu" {
			continue
		}
		files, err := runtime.FilesForSet(ks.Name, "gemm", runtime.KindDepthwise)
		if err != nil {
			t.Errorf("kernel set %s: %v", ks.Name, err)
			continue
		}
		for _, f := range files {
			if strings.HasSuffix(f, ".s") && (ks.GOARCH == "" || !strings.HasSuffix(f, "_"+ks.GOARCH+".s")) {
				t.Errorf("kernel set %s (goarch %q) carries %s", ks.Name, ks.GOARCH, f)
			}
		}
	}
}
