package kernels

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDeps enforces that the package imports only the standard library and
// golang.org/x/sys/cpu, in every build configuration.
func TestDeps(t *testing.T) {
	for _, env := range [][]string{nil, {"GOARCH=arm64"}, {"GOFLAGS=-tags=noasm"}} {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list %v: %v\n%s", env, err, out)
		}
		for _, p := range strings.Fields(string(out)) {
			if p != "github.com/pnasml/pnas/runtime/kernels" && p != "golang.org/x/sys/cpu" {
				t.Errorf("%v: kernels depends on %s; only the standard library and golang.org/x/sys/cpu are allowed", env, p)
			}
		}
	}
}

func TestSetKernelSet(t *testing.T) {
	prev := KernelSet()
	defer SetKernelSet(prev)
	if err := SetKernelSet("go"); err != nil || KernelSet() != "go" {
		t.Fatalf("SetKernelSet(go) = %v, KernelSet() = %q", err, KernelSet())
	}
	if err := SetKernelSet("sse9"); err == nil {
		t.Fatal("unknown set accepted")
	}
	if capLevel(levelAVX512, "1", "") != levelGo || capLevel(levelAVX512, "", "avx2") != levelAVX2 || capLevel(levelAVX2, "", "avx512") != levelAVX2 {
		t.Fatal("capLevel ignores PNAS_NOASM or PNAS_KERNELS")
	}
}
