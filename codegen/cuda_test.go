package codegen_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pnasml/pnas/codegen"
	"github.com/pnasml/pnas/ir"
)

// TestCUDAProgram compiles several models for the cuda target into one
// program on this machine (no CUDA toolkit, no driver needed): PTX for
// sm_80 and sm_90 with an entry for every launch, a module requiring only
// purego, deterministic output, a build with cgo off, and a program that
// fails cleanly (one line, status 1) where no driver or GPU is present.
func TestCUDAProgram(t *testing.T) {
	all := suite(t)
	models := []*ir.Model{all[0], all[1], all[len(all)-2]} // two random nets and the standalone-ops edge case
	tg := target(t, "cuda")
	p, err := codegen.Generate(models, codegen.Options{Target: tg, Module: "cudatest"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := codegen.Generate(models, codegen.Options{Target: tg, Module: "cudatest"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Files) != len(again.Files) {
		t.Fatal("two generations differ in their files")
	}
	for i := range p.Files {
		if p.Files[i].Path != again.Files[i].Path || !bytes.Equal(p.Files[i].Data, again.Files[i].Data) {
			t.Errorf("%s differs between two generations", p.Files[i].Path)
		}
	}
	for _, f := range p.Files {
		if strings.HasPrefix(f.Path, "rt/") {
			t.Errorf("a CUDA program holds the CPU runtime file %s", f.Path)
		}
		if strings.HasSuffix(f.Path, ".go") || strings.HasSuffix(f.Path, ".ptx") {
			if !bytes.Contains(f.Data[:min(len(f.Data), 200)], []byte(codegen.Banner)) {
				t.Errorf("%s lacks the banner", f.Path)
			}
		}
	}
	if !bytes.Contains(p.File("go.mod"), []byte("require github.com/ebitengine/purego v0.11.3\n")) {
		t.Errorf("go.mod:\n%s", p.File("go.mod"))
	}
	for _, arch := range []string{"sm80", "sm90"} {
		ptx := string(p.File("kernels_" + arch + ".ptx"))
		if !strings.Contains(ptx, ".target sm_"+arch[2:]+"\n") {
			t.Errorf("kernels_%s.ptx has no .target sm_%s", arch, arch[2:])
		}
		for k := range models {
			for _, src := range []string{string(p.File("model0.go")), string(p.File("model1.go")), string(p.File("model2.go"))} {
				for _, line := range strings.Split(src, "\n") {
					if _, rest, ok := strings.Cut(line, `{kernel: "`); ok {
						name, _, _ := strings.Cut(rest, `"`)
						if !strings.Contains(ptx, ".visible .entry "+name+"(") {
							t.Errorf("model %d launches %s, which kernels_%s.ptx lacks", k, name, arch)
						}
					}
				}
			}
		}
	}

	dir := t.TempDir()
	if err := p.Write(dir); err != nil {
		t.Fatal(err)
	}
	bin, err := codegen.Build(dir, codegen.BuildOptions{Target: tg})
	if err != nil {
		t.Fatal(err)
	}
	info, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil || !strings.Contains(string(info), "CGO_ENABLED=0") || !strings.Contains(string(info), "github.com/ebitengine/purego") {
		t.Errorf("go version -m: %v\n%s", err, info)
	}
	out, err := exec.Command(bin, "-list").Output()
	if err != nil || strings.Count(string(out), "\n") != len(models) || !strings.HasPrefix(string(out), models[0].Name+"\t") {
		t.Errorf("-list: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-bench", "2", "-batch", "4", "-threads", "3")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if tg.HostSupports() != nil {
		// no driver here: the one line
		if code != 1 || stderr.String() != "model: no CUDA driver: libcuda.so.1 not found\n" {
			t.Errorf("without a driver: status %d (%v), stderr %q", code, err, stderr.String())
		}
	} else if code != 0 && (code != 1 || strings.Count(stderr.String(), "\n") != 1) {
		t.Errorf("with a driver: status %d, stderr %q; expected success or one line and status 1", code, stderr.String())
	}
}

// TestCPUProgramsHaveNoPurego checks that purego, which CUDA programs
// need, stays out of CPU programs: no requirement, no import.
func TestCPUProgramsHaveNoPurego(t *testing.T) {
	p, err := codegen.Generate(suite(t)[:1], codegen.Options{Target: target(t, "generic")})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range p.Files {
		if bytes.Contains(f.Data, []byte("github.com/ebitengine/purego")) || (f.Path == "go.mod" && bytes.Contains(f.Data, []byte("require"))) {
			t.Errorf("CPU program file %s imports or requires github.com/ebitengine/purego", f.Path)
		}
		if filepath.Ext(f.Path) == ".ptx" {
			t.Errorf("CPU program holds %s", f.Path)
		}
	}
}

// TestPuregoOnlyInCUDAPrograms checks that no package of pnas but the CUDA
// program shell imports purego: the pnas binary stays static.
func TestPuregoOnlyInCUDAPrograms(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../cmd/pnas", "../runtime", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "ebitengine/purego") || strings.HasSuffix(p, "codegen/cudashell") {
			t.Errorf("pnas depends on %s", p)
		}
	}
}
