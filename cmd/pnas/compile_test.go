package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/pass"
	"github.com/pnasml/pnas/targets"
)

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

var peakRE = regexp.MustCompile(`peak activation memory: (\d+) bytes \(IR (\d+) bytes; runtime layout padding at most (\d+) bytes\)`)

// TestCompileAndRun compiles a model for the AVX2 target (or the generic
// one on other machines), checks the reported memory plan against the IR's
// statistics, and runs the program on a Fashion-MNIST image and in bench
// mode.
func TestCompileAndRun(t *testing.T) {
	path := smallModel(t)
	target, kernels := "amd64", "avx2"
	if tg, err := targets.Lookup(target); err != nil || tg.HostSupports() != nil {
		target, kernels = "generic", "go"
	}
	dir := filepath.Join(t.TempDir(), "out")
	code, out, errs := runCLI(t, "compile", path, "--target", target, "-o", dir)
	if code != 0 {
		t.Fatalf("compile failed (%d): %s", code, errs)
	}
	bin := lastLine(out)
	if bin != filepath.Join(dir, "model") {
		t.Fatalf("last line %q, want the binary %s", bin, filepath.Join(dir, "model"))
	}

	// The memory plan against ir.Stats of the optimised model.
	mm := peakRE.FindStringSubmatch(out)
	if mm == nil {
		t.Fatalf("no memory plan line in:\n%s", out)
	}
	arena, _ := strconv.Atoi(mm[1])
	irPeak, _ := strconv.Atoi(mm[2])
	overhead, _ := strconv.Atoi(mm[3])
	m, err := ir.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	om, err := pass.Apply(m, pass.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := om.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if int64(irPeak) != st.PeakActivationBytes {
		t.Errorf("reported IR peak %d, Stats says %d", irPeak, st.PeakActivationBytes)
	}
	if arena > irPeak+overhead || arena <= 0 {
		t.Errorf("arena %d bytes exceeds the IR peak %d plus layout padding %d", arena, irPeak, overhead)
	}

	img := filepath.Join("..", "..", "data", "fmnist", "t10k-images-idx3-ubyte.gz")
	res, err := exec.Command(bin, "-input", img, "-index", "7", "-k", "3").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, res)
	}
	if !strings.Contains(string(res), "top 3 of 10 classes") || !regexp.MustCompile(`(Trouser|Shirt|Coat|Bag|Sneaker|Dress|Pullover|Sandal|Ankle boot|T-shirt/top)`).Match(res) {
		t.Errorf("classification output:\n%s", res)
	}

	res, err = exec.Command(bin, "-bench", "5", "-warmup", "1", "-json", "-threads", "1").Output()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := targets.ParseBench(res)
	if err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	if rep.Target != target || rep.KernelSet != kernels || rep.Model != "small" || rep.Runs != 5 || len(rep.Layers) != 3 {
		t.Errorf("bench report: %+v", rep)
	}
	if rep.Layers[1].Key == "" || rep.Layers[1].Name != "1.0 mbconv k3 e3" {
		t.Errorf("layer 1: %+v", rep.Layers[1])
	}

	cmd := exec.Command(bin, "-input", path)
	res, err = cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || strings.Count(string(res), "\n") != 1 {
		t.Errorf("a JSON file as input: %v, output %q; want exit 2 and one line", err, res)
	}
}

func TestCompileNoBuildAndDump(t *testing.T) {
	path := smallModel(t)
	dir := filepath.Join(t.TempDir(), "out")
	code, out, errs := runCLI(t, "compile", path, "--target", "generic", "-o", dir, "--no-build", "-d", "pass/fold-bn/dump", "-d", "check")
	if code != 0 {
		t.Fatalf("compile failed (%d): %s", code, errs)
	}
	if !strings.Contains(out, "# IR after pass fold-bn") {
		t.Errorf("no IR dump in:\n%s", out)
	}
	for _, f := range []string{"go.mod", "main.go", "model.go", "weights.bin", "rt/tensor.go"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "model")); err == nil {
		t.Errorf("--no-build built a binary")
	}
}

func TestCompileErrors(t *testing.T) {
	path := smallModel(t)
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-d", "pass/nope/dump"}, 1, `unknown pass "nope"`},
		{[]string{"-d", "everything"}, 2, "unknown debug flag"},
		{[]string{"--target", "amd64", "--goarch", "arm64"}, 2, "target amd64 is for GOARCH amd64"},
		{[]string{"--target", "nope"}, 1, `unknown target "nope"`},
		{[]string{"--goamd64", "v9"}, 2, "expected v1, v2, v3 or v4"},
	} {
		code, _, errs := runCLI(t, append([]string{"compile", path, "-o", dir, "--no-build"}, c.args...)...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", c.args, code, errs, c.code, c.want)
		}
	}
}

func TestCompileGenericArm64(t *testing.T) {
	path := smallModel(t)
	dir := filepath.Join(t.TempDir(), "arm64")
	code, out, errs := runCLI(t, "compile", path, "--target", "generic", "--goarch", "arm64", "-o", dir)
	if code != 0 {
		t.Fatalf("compile failed (%d): %s", code, errs)
	}
	bin := lastLine(out)
	v, err := exec.Command("go", "version", bin).CombinedOutput()
	if err != nil || !strings.Contains(string(v), "arm64") {
		t.Fatalf("go version %s: %v %s", bin, err, v)
	}
	qemu, err := exec.LookPath("qemu-aarch64-static")
	if err != nil {
		t.Log("qemu-aarch64-static not installed: the arm64 binary is built, not run")
		return
	}
	res, err := exec.Command(qemu, bin, "-bench", "2", "-warmup", "0", "-json").Output()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := targets.ParseBench(res)
	if err != nil || rep.GOARCH != "arm64" || rep.KernelSet != "go" {
		t.Errorf("arm64 bench: %v %+v", err, rep)
	}
}

// TestCompileWarnsForeignTarget: compiling for a target this machine
// cannot run succeeds but says so on stderr, before Go's start-up check in
// the program would.
func TestCompileWarnsForeignTarget(t *testing.T) {
	path := smallModel(t)
	for _, name := range []string{"arm64", "amd64", "amd64-avx512", "generic"} {
		tg, err := targets.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		code, _, errs := runCLI(t, "compile", path, "--target", name, "-o", filepath.Join(t.TempDir(), "m"), "--no-build")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, errs)
		}
		hostErr := tg.HostSupports()
		warned := strings.Contains(errs, "warning:") && strings.Contains(errs, "will not run on this machine")
		if (hostErr != nil) != warned {
			t.Errorf("%s: host support %v, stderr %q", name, hostErr, errs)
		}
		if hostErr != nil && !strings.Contains(errs, hostErr.Error()) {
			t.Errorf("%s: stderr %q does not give the reason %q", name, errs, hostErr)
		}
	}
	// The generic target on another architecture is not this machine's either.
	other := "arm64"
	if goruntime.GOARCH == "arm64" {
		other = "amd64"
	}
	_, _, errs := runCLI(t, "compile", path, "--target", "generic", "--goarch", other, "-o", filepath.Join(t.TempDir(), "m"), "--no-build")
	if !strings.Contains(errs, "GOARCH "+other) || !strings.Contains(errs, "will not run on this machine") {
		t.Errorf("generic --goarch %s: stderr %q", other, errs)
	}
}
