package codegen_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"go/format"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pnasml/pnas/codegen"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/interp"
	"github.com/pnasml/pnas/ir/pass"
	"github.com/pnasml/pnas/runtime"
	"github.com/pnasml/pnas/targets"
)

// numRandom is the number of random search-space architectures checked
// against the interpreter.
const numRandom = 50

// samplesPerModel is the number of random inputs each model runs.
const samplesPerModel = 4

func target(t *testing.T, name string) *targets.Target {
	t.Helper()
	tg, err := targets.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// hostTarget is the best preset target this machine runs.
func hostTarget(t *testing.T) *targets.Target {
	t.Helper()
	tg, err := codegen.HostTarget()
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

var (
	suiteOnce   sync.Once
	suiteModels []*ir.Model
	suiteErr    error
)

// suite returns the random architectures and the edge cases.
func suite(t *testing.T) []*ir.Model {
	t.Helper()
	suiteOnce.Do(func() {
		for i := 0; i < numRandom; i++ {
			m, err := randomMBConv(uint64(i))
			if err != nil {
				suiteErr = fmt.Errorf("random model %d: %w", i, err)
				return
			}
			suiteModels = append(suiteModels, m)
		}
		edges, err := edgeCases()
		if err != nil {
			suiteErr = err
			return
		}
		suiteModels = append(suiteModels, edges...)
	})
	if suiteErr != nil {
		t.Fatal(suiteErr)
	}
	return suiteModels
}

func randomSamples(m *ir.Model, n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 11))
	s := m.Input.Shape
	x := make([]float32, n*s[0]*s[1]*s[2])
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

func writeFloats(t *testing.T, path string, v []float32) {
	t.Helper()
	var b []byte
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFloats(t *testing.T, path string) []float32 {
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

// compareOutputs checks got against want within 1e-4 of the output's
// scale (the largest magnitude of want, at least 1e-3).
func compareOutputs(got, want []float32) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d values, want %d", len(got), len(want))
	}
	scale := 1e-3
	for _, v := range want {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	worst, at := 0.0, 0
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(float64(got[i])) {
			d = math.Inf(1)
		}
		if d > worst {
			worst, at = d, i
		}
	}
	if worst > 1e-4*scale {
		return fmt.Errorf("value %d: got %v, want %v (error %.3g of scale %.3g)", at, got[at], want[at], worst/scale, scale)
	}
	return nil
}

// buildSuite compiles every model of the suite into one program for the
// target, with no block fused, and returns the binary. Binaries are built
// once per test binary.
func buildSuite(t *testing.T, tg *targets.Target, goarch string) string {
	t.Helper()
	return buildSuiteFused(t, tg, goarch, codegen.FuseOff)
}

// buildSuiteFused is buildSuite with the given fusion mode.
func buildSuiteFused(t *testing.T, tg *targets.Target, goarch string, fuse codegen.FuseMode) string {
	t.Helper()
	key := fmt.Sprintf("%s/%s/fuse%d", tg.Name, goarch, fuse)
	builds.Lock()
	defer builds.Unlock()
	if bin, ok := builds.bins[key]; ok {
		return bin
	}
	models := suite(t)
	dir := filepath.Join(tempRoot, strings.ReplaceAll(key, "/", "_"))
	bin, err := codegen.GenerateAndBuild(models, codegen.Options{Target: tg, Module: "suite", Passes: pass.Options{Check: true}, FuseMBConv: fuse}, dir, codegen.BuildOptions{Target: tg, GOARCH: goarch})
	if err != nil {
		t.Fatal(err)
	}
	builds.bins[key] = bin
	return bin
}

var (
	tempRoot string
	builds   = struct {
		sync.Mutex
		bins map[string]string
	}{bins: map[string]string{}}
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "codegen-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tempRoot = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// checkAgainstInterp runs every model of the suite in the binary (through
// exec, which may be an emulator) and compares the outputs with the
// interpreter's.
func checkAgainstInterp(t *testing.T, bin string, execPrefix, extraArgs []string, extraEnv ...string) {
	checkSome(t, bin, execPrefix, extraArgs, func(int) bool { return true }, extraEnv...)
}

// checkSome is checkAgainstInterp for the models whose index passes keep.
func checkSome(t *testing.T, bin string, execPrefix, extraArgs []string, keep func(int) bool, extraEnv ...string) {
	models := suite(t)
	dir := t.TempDir()
	for i, m := range models {
		if !keep(i) {
			continue
		}
		x := randomSamples(m, samplesPerModel, uint64(i))
		want, err := interp.Run(m, x, samplesPerModel)
		if err != nil {
			t.Fatalf("%s: interp: %v", m.Name, err)
		}
		in := filepath.Join(dir, "in.bin")
		out := filepath.Join(dir, "out.bin")
		writeFloats(t, in, x)
		args := append(append([]string(nil), execPrefix...), bin, "-model", m.Name, "-input", in, "-dump-output", out, "-threads", fmt.Sprint(1+i%2))
		args = append(args, extraArgs...)
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), extraEnv...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v: %s", m.Name, err, stderr.String())
		}
		if err := compareOutputs(readFloats(t, out), want); err != nil {
			t.Errorf("%s: %v", m.Name, err)
		}
	}
}

// TestCompiledMatchesInterpreter runs the suite compiled for the best
// target of this machine with each kernel set the machine runs.
func TestCompiledMatchesInterpreter(t *testing.T) {
	tg := hostTarget(t)
	bin := buildSuite(t, tg, "")
	for _, ks := range runtime.KernelSets() {
		if kernelRank(ks) > kernelRank(tg.KernelSet) {
			continue
		}
		t.Run(ks, func(t *testing.T) {
			out, err := exec.Command(bin, "-bench", "1", "-warmup", "0", "-json", "-kernels", ks).Output()
			if err != nil {
				t.Fatal(err)
			}
			rep, err := targets.ParseBench(out)
			if err != nil || rep.KernelSet != ks {
				t.Fatalf("bench report %v, %+v: want kernel set %s", err, rep, ks)
			}
			checkAgainstInterp(t, bin, nil, []string{"-kernels", ks})
		})
	}
	// PNAS_NOASM=1 forces the pure-Go kernels whatever the flags say.
	t.Run("PNAS_NOASM", func(t *testing.T) { checkAgainstInterp(t, bin, nil, nil, "PNAS_NOASM=1") })
}

// TestBenchRunsSeeTheInput runs -bench on every model of the suite: each
// timed run loads the sample again, since later tensors reuse the input's
// arena floats, and the program fails when the last run's output differs
// from the first run's.
func TestBenchRunsSeeTheInput(t *testing.T) {
	bin := buildSuite(t, hostTarget(t), "")
	list, err := exec.Command(bin, "-list").Output()
	if err != nil {
		t.Fatal(err)
	}
	names := 0
	for _, line := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		name, _, _ := strings.Cut(line, "\t")
		if out, err := exec.Command(bin, "-model", name, "-bench", "3", "-warmup", "0", "-threads", "2").CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
		names++
	}
	if names < 2 {
		t.Fatalf("-list gave %d models:\n%s", names, list)
	}
	t.Logf("%d models", names)
}

// TestFusedMatchesInterpreter runs the suite with every inverted-residual
// block fused (rt.MBConv), compiled for the best target of this machine
// with each kernel set it runs and without assembly, and for the generic
// target (-tags noasm). TestCompiledMatchesInterpreter covers the unfused
// operators.
func TestFusedMatchesInterpreter(t *testing.T) {
	tg := hostTarget(t)
	// Most random models have blocks with an expansion: make sure the
	// generated code fuses them.
	p, err := codegen.Generate(suite(t), codegen.Options{Target: tg, Module: "suite", FuseMBConv: codegen.FuseOn})
	if err != nil {
		t.Fatal(err)
	}
	fused, noexp, dense := 0, 0, 0
	for _, f := range p.Files {
		fused += bytes.Count(f.Data, []byte("rt.NewMBConv("))
		noexp += bytes.Count(f.Data, []byte("rt.NewMBConv(nil, "))
		dense += bytes.Count(f.Data, []byte("rt.NewMBConvDense("))
	}
	if fused < numRandom {
		t.Fatalf("%d blocks fused in the suite, want at least %d", fused, numRandom)
	}
	// Blocks without expansion (e1) are fused as depthwise → project, or
	// with the stem before them as convolution → depthwise → project.
	if noexp == 0 || dense == 0 {
		t.Fatalf("%d blocks without expansion and %d after a stem fused in the suite, want some of each", noexp, dense)
	}
	t.Logf("%d blocks fused with an expansion, %d without, %d after a stem", fused-noexp, noexp, dense)
	bin := buildSuiteFused(t, tg, "", codegen.FuseOn)
	for _, ks := range runtime.KernelSets() {
		if kernelRank(ks) > kernelRank(tg.KernelSet) {
			continue
		}
		t.Run(ks, func(t *testing.T) { checkAgainstInterp(t, bin, nil, []string{"-kernels", ks}) })
	}
	t.Run("PNAS_NOASM", func(t *testing.T) { checkAgainstInterp(t, bin, nil, nil, "PNAS_NOASM=1") })
	t.Run("generic", func(t *testing.T) {
		checkAgainstInterp(t, buildSuiteFused(t, target(t, "generic"), "", codegen.FuseOn), nil, nil)
	})
}

// TestSplitMatchesInterpreter runs the suite as FuseAuto compiles it on two
// threads, so that its small blocks run split by channels
// (MBConv.RunChannelsIn, in the arena floats of their expanded tensors),
// with each kernel set of this machine and without assembly.
func TestSplitMatchesInterpreter(t *testing.T) {
	tg := hostTarget(t)
	if tg.GOARCH != "amd64" {
		t.Skipf("target %s: blocks are split by channels on amd64 targets only", tg.Name)
	}
	p, err := codegen.Generate(suite(t), codegen.Options{Target: tg, Module: "suite", Passes: pass.Options{Check: true}})
	if err != nil {
		t.Fatal(err)
	}
	split := 0
	for _, f := range p.Files {
		split += bytes.Count(f.Data, []byte(".RunChannelsIn("))
	}
	if split < numRandom/2 {
		t.Fatalf("%d blocks split by channels in the suite, want at least %d", split, numRandom/2)
	}
	t.Logf("%d blocks split by channels", split)
	bin := buildSuiteFused(t, tg, "", codegen.FuseAuto)
	for _, ks := range runtime.KernelSets() {
		if kernelRank(ks) > kernelRank(tg.KernelSet) {
			continue
		}
		t.Run(ks, func(t *testing.T) { checkAgainstInterp(t, bin, nil, []string{"-kernels", ks, "-threads", "2"}) })
	}
	t.Run("PNAS_NOASM", func(t *testing.T) { checkAgainstInterp(t, bin, nil, []string{"-threads", "2"}, "PNAS_NOASM=1") })
}

func kernelRank(name string) int {
	return strings.Index("go avx2 avx512", name)
}

// TestGenericMatchesInterpreter runs the suite compiled for the generic
// target (pure Go, -tags noasm) on this machine and, cross-compiled for
// arm64, under qemu-aarch64-static when that is installed (a subset).
func TestGenericMatchesInterpreter(t *testing.T) {
	generic := target(t, "generic")
	bin := buildSuite(t, generic, "")
	checkAgainstInterp(t, bin, nil, nil)
	t.Run("arm64", func(t *testing.T) {
		bin := buildSuite(t, generic, "arm64")
		out, err := exec.Command("go", "version", bin).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "arm64") {
			t.Fatalf("go version %s: %v %s", bin, err, out)
		}
		qemu, err := exec.LookPath("qemu-aarch64-static")
		if err != nil {
			t.Log("qemu-aarch64-static not installed: arm64 build checked, not run")
			return
		}
		// Emulation is slow to start: a fifth of the random models and
		// every edge case.
		checkSome(t, bin, []string{qemu}, nil, func(i int) bool { return i%5 == 0 || i >= numRandom })
	})
}

func TestMemoryPlan(t *testing.T) {
	for _, m := range suite(t) {
		p, err := codegen.Generate([]*ir.Model{m}, codegen.Options{Target: target(t, "generic")})
		if err != nil {
			t.Fatal(err)
		}
		plan := p.Plans[0]
		om := p.Models[0]
		st, err := om.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if plan.IRPeak != st.PeakActivationBytes {
			t.Errorf("%s: plan IR peak %d, Stats says %d", m.Name, plan.IRPeak, st.PeakActivationBytes)
		}
		if plan.Bytes != plan.LowerBound {
			t.Errorf("%s: arena %d bytes, lower bound %d", m.Name, plan.Bytes, plan.LowerBound)
		}
		if plan.Bytes > plan.IRPeak+plan.Overhead {
			t.Errorf("%s: arena %d bytes exceeds IR peak %d + layout padding %d", m.Name, plan.Bytes, plan.IRPeak, plan.Overhead)
		}
		if strings.HasPrefix(m.Name, "rand") {
			t.Logf("%s: %v", m.Name, plan)
		}
	}
}

// TestGeneratedFiles checks the hygiene of a generated module: the same
// input gives the same bytes, every file carries the generated-code banner,
// Go files are gofmt'd, go.mod has no requirements, and no file mentions
// the machine's paths.
func TestGeneratedFiles(t *testing.T) {
	models := suite(t)
	pick := []*ir.Model{models[0], models[len(models)-2], models[len(models)-1]}
	for _, name := range []string{"generic", "amd64", "amd64-avx512"} {
		opt := codegen.Options{Target: target(t, name)}
		a, err := codegen.Generate(pick, opt)
		if err != nil {
			t.Fatal(err)
		}
		b, err := codegen.Generate(pick, opt)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Files) != len(b.Files) {
			t.Fatalf("%s: %d files, then %d", name, len(a.Files), len(b.Files))
		}
		wd, _ := os.Getwd()
		home, _ := os.UserHomeDir()
		for i, f := range a.Files {
			if f.Path != b.Files[i].Path || !bytes.Equal(f.Data, b.Files[i].Data) {
				t.Errorf("%s: %s differs between two runs", name, f.Path)
			}
			if f.Path == "weights.bin" {
				continue
			}
			text := string(f.Data)
			if !bannerRE.MatchString(text) {
				t.Errorf("%s: %s has no generated-code banner", name, f.Path)
			}
			for _, p := range []string{wd, home, os.TempDir()} {
				if p != "" && p != "/" && strings.Contains(text, p) {
					t.Errorf("%s: %s mentions the local path %s", name, f.Path, p)
				}
			}
			if strings.HasSuffix(f.Path, ".go") {
				formatted, err := format.Source(f.Data)
				if err != nil || !bytes.Equal(formatted, f.Data) {
					t.Errorf("%s: %s is not gofmt'd (%v)", name, f.Path, err)
				}
				if strings.Contains(text, "golang.org/x/") || strings.Contains(text, "github.com/") {
					t.Errorf("%s: %s imports outside the standard library and the module", name, f.Path)
				}
			}
		}
		mod := string(a.File("go.mod"))
		if strings.Contains(mod, "require") || !strings.Contains(mod, "module "+a.Module+"\n") || !strings.Contains(mod, "go 1.26\n") {
			t.Errorf("%s: go.mod:\n%s", name, mod)
		}
		if a.File("main.go") == nil || a.File("model0.go") == nil || a.File("weights.bin") == nil {
			t.Errorf("%s: missing main.go, model0.go or weights.bin", name)
		}
		// a program ships its own kernel set and those below it, never one above
		want := map[string][]string{"generic": nil, "amd64": {"avx2"}, "amd64-avx512": {"avx2", "avx512"}}[name]
		for _, set := range []string{"avx2", "avx512"} {
			has := a.File("rt/zgemm_"+set+"_amd64.s") != nil && a.File("rt/zdw_"+set+"_amd64.s") != nil
			if has != slices.Contains(want, set) {
				t.Errorf("%s: ships the %s kernels: %v, want %v", name, set, has, !has)
			}
		}
	}
}

var bannerRE = regexp.MustCompile(`(?m)^// Code generated by pnas compile\. DO NOT EDIT\.$`)

// TestSoftmaxModelJSON checks the classification output of a model that
// ends in a softmax: logits are the softmax's input, probs its output.
func TestSoftmaxModelJSON(t *testing.T) {
	bin := buildSuite(t, hostTarget(t), "")
	var m *ir.Model
	for _, c := range suite(t) {
		if c.Name == "standalone-ops" {
			m = c
		}
	}
	x := randomSamples(m, 1, 99)
	all, err := interp.RunTensors(m, x, 1)
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(t.TempDir(), "x.npy")
	writeNPY(t, in, x, m.Input.Shape)
	out, err := exec.Command(bin, "-model", m.Name, "-input", in, "-json", "-k", "3").Output()
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Logits []float32 `json:"logits"`
		Probs  []float32 `json:"probs"`
		Top    []struct {
			Class int     `json:"class"`
			Prob  float64 `json:"prob"`
		} `json:"top"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if err := compareOutputs(r.Logits, all["fc"]); err != nil {
		t.Errorf("logits: %v", err)
	}
	if err := compareOutputs(r.Probs, all["prob"]); err != nil {
		t.Errorf("probs: %v", err)
	}
	if len(r.Top) != 3 || r.Top[0].Prob < r.Top[1].Prob || r.Top[1].Prob < r.Top[2].Prob {
		t.Errorf("top: %+v", r.Top)
	}
}

func writeNPY(t *testing.T, path string, x []float32, shape []int) {
	t.Helper()
	h := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (1, %d, %d, %d), }", shape[0], shape[1], shape[2])
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
	b = append(b, h...)
	for _, f := range x {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMemoryPlanExact checks the plan of a model whose layout adds no
// padding (channels multiple of 16, 1x1 convolutions only): the arena is
// the IR's peak minus what writing the last block's output over its
// residual saves.
func TestMemoryPlanExact(t *testing.T) {
	b := ir.NewBuilder("exact", 16, 8, 8, rand.New(rand.NewPCG(5, 5)))
	x0 := b.Input()
	a := b.Conv("a", x0, 32, 1, 1, 1)
	x1 := b.Add("add1", b.Conv("b", a, 16, 1, 1, 1), x0) // residual: the input, kept
	c := b.Conv("c", x1, 64, 1, 1, 1)
	x2 := b.Add("add2", b.Conv("d", c, 16, 1, 1, 1), x1) // residual x1 dies here: in place
	y := b.Dense("fc", b.Flatten("flat", b.GlobalPool("pool", x2)), 16, nil, nil)
	m, err := b.Model(y)
	if err != nil {
		t.Fatal(err)
	}
	p, err := codegen.Generate([]*ir.Model{m}, codegen.Options{Target: target(t, "generic")})
	if err != nil {
		t.Fatal(err)
	}
	plan := p.Plans[0]
	// IR peak during d: c (64x8x8) + x1 (16x8x8) + d's output (16x8x8).
	// The arena holds c and x1 (d writes over x1). After the passes there
	// are 8 tensors (the adds fuse into b and d) in 6 buffers (d shares
	// x1's, the flatten its input's).
	const px = 64
	want := codegen.MemoryPlan{Bytes: 4 * (64 + 16) * px, LowerBound: 4 * (64 + 16) * px,
		IRPeak: 4 * (64 + 16 + 16) * px, Overhead: 0, Buffers: 6, Tensors: 8}
	if plan != want {
		t.Errorf("plan %+v\nwant %+v", plan, want)
	}
}
