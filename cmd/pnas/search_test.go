package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/search"
	"github.com/pnasml/pnas/search/space"
	"github.com/pnasml/pnas/targets"
)

// TestMain lets a test run this binary as the pnas command (PNAS_TEST_MAIN=1),
// so that a test can start, kill and resume a real search process.
func TestMain(m *testing.M) {
	if os.Getenv("PNAS_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const tinySpace = `{
  "name": "tiny",
  "input": {"height": 28, "width": 28, "channels": 1},
  "classes": 10,
  "stem": {"channels": 8, "kernel": 3, "stride": 2},
  "first": {"channels": 8, "kernel": 3, "expand": 1, "stride": 2},
  "stages": [{"channels": 8, "stride": 1, "layers": 2}, {"channels": 16, "stride": 2, "layers": 1}],
  "head": {"channels": 32},
  "candidates": ["k3e3", "k7e6", "zero"]
}`

// tinySetup writes the tiny space and a latency table proportional to MACs.
func tinySetup(t *testing.T) (spacePath, lutPath string) {
	t.Helper()
	dir := t.TempDir()
	spacePath = filepath.Join(dir, "tiny.json")
	if err := os.WriteFile(spacePath, []byte(tinySpace), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, err := space.Load(spacePath)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := sp.Plan()
	if err != nil {
		t.Fatal(err)
	}
	mt := search.MACTable(plan, 10) // 10 µs per million MACs
	lut := &targets.LUT{Target: "amd64", Space: "tiny", Machine: targets.Machine{CPU: "test", Cores: 1},
		GoVersion: "go1.26.0", KernelSet: "avx2", Threads: 1, Entries: map[string]targets.Entry{}}
	for k, v := range mt.Entries {
		lut.Entries[k] = targets.Entry{MeanUS: v, MedianUS: v, Count: 1}
	}
	lutPath = filepath.Join(dir, "lut.json")
	if err := lut.Save(lutPath); err != nil {
		t.Fatal(err)
	}
	return spacePath, lutPath
}

// tinyLatency is tinySetup with the space's plan, the table and the
// table's latency model of the plan.
func tinyLatency(t *testing.T) (spacePath, lutPath string, plan *space.Plan, lut *targets.LUT, lm *search.LatencyModel) {
	t.Helper()
	spacePath, lutPath = tinySetup(t)
	sp, err := space.Load(spacePath)
	if err != nil {
		t.Fatal(err)
	}
	if plan, err = sp.Plan(); err != nil {
		t.Fatal(err)
	}
	if lut, err = targets.Load(lutPath); err != nil {
		t.Fatal(err)
	}
	if lm, err = search.NewLatencyModel(plan, lut.SearchTable()); err != nil {
		t.Fatal(err)
	}
	return spacePath, lutPath, plan, lut, lm
}

// runForModel runs a pnas command (search, derive) with args, which write
// dir/model.json, and returns that model and the output.
func runForModel(t *testing.T, dir string, args []string) (*ir.Model, string) {
	t.Helper()
	code, out, errs := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("pnas %s failed (%d): %s\n%s", args[0], code, errs, out)
	}
	m, err := ir.Load(filepath.Join(dir, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	return m, out
}

func searchArgs(spacePath, lutPath, dir string, extra ...string) []string {
	return append([]string{"search", "--space", spacePath, "--lut", lutPath, "--data", "fashion-mnist-subset",
		"--train-limit", "96", "--held-out", "32", "--batch", "8", "--arch-batch", "8", "--arch-every", "2",
		"--warmup-epochs", "1", "--epochs", "2", "--train-epochs", "1", "--checkpoint-every", "3", "--latency-target", "20us",
		"--seed", "3", "-o", dir}, extra...)
}

func TestSearchErrors(t *testing.T) {
	spacePath, lutPath := tinySetup(t)
	dir := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"search", "--space", spacePath, "--lut", lutPath, "--data", "fashion-mnist-subset"}, "-o RUNDIR"},
		{[]string{"search", "--resume", filepath.Join(dir, "nothing")}, "not a run directory"},
		{[]string{"search", "--space", "nosuch", "-o", filepath.Join(dir, "r1")}, "nosuch"},
		{searchArgs(spacePath, lutPath, filepath.Join(dir, "r2"), "--latency-target", "fast"), "--latency-target"},
		{[]string{"search", "--space", "fmnist", "--lut", lutPath, "--data", "fashion-mnist-subset", "-o", filepath.Join(dir, "r3")}, "missing key"},
		{searchArgs(spacePath, lutPath, filepath.Join(dir, "r4"), "--target", "amd64-avx512"), "--target amd64-avx512: the table " + lutPath + " was measured for target amd64"},
	}
	for _, c := range cases {
		code, _, errs := runCLI(t, c.args...)
		if code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want it to mention %q", c.args[1:], code, errs, c.want)
		}
	}
}

// With a heavy latency weight, the search on the Fashion-MNIST subset moves
// probability towards the cheap candidate (k3e3) and away from the
// expensive one (k7e6) in every layer.
func TestSearchLatencyWeightMovesAlpha(t *testing.T) {
	spacePath, lutPath := tinySetup(t)
	dir := filepath.Join(t.TempDir(), "lat")
	m, _ := runForModel(t, dir, searchArgs(spacePath, lutPath, dir, "--loss", "add#linear", "--loss-lambda", "20", "--arch-lr", "0.05", "--epochs", "3", "--train-epochs", "0"))
	info := m.Metadata.Search
	cands := info.Candidates // k3e3, k7e6, zero (zero only where allowed)
	for l, alpha := range info.Alpha {
		p := softmax(alpha)
		i3, i7 := indexOf(cands, "mbconv k3 e3"), indexOf(cands, "mbconv k7 e6")
		if i3 < 0 || i7 < 0 || i3 >= len(p) || i7 >= len(p) {
			t.Fatalf("candidates %v, alpha %v", cands, alpha)
		}
		if !(p[i3] > p[i7]) {
			t.Errorf("layer %d: p(k3e3)=%.4f not above p(k7e6)=%.4f", l, p[i3], p[i7])
		}
	}
	recs, err := readEpochs(filepath.Join(dir, logFile))
	if err != nil {
		t.Fatal(err)
	}
	first, last := recs[1].ExpectedLatencyUS, recs[len(recs)-1].ExpectedLatencyUS
	if !(last < first) {
		t.Errorf("expected latency did not fall: %.3f µs after the first search epoch, %.3f µs at the end", first, last)
	}
}

func softmax(a []float64) []float64 {
	m := a[0]
	for _, v := range a {
		if v > m {
			m = v
		}
	}
	var s float64
	p := make([]float64, len(a))
	for i, v := range a {
		p[i] = math.Exp(v - m)
		s += p[i]
	}
	for i := range p {
		p[i] /= s
	}
	return p
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestLatencyMissNote(t *testing.T) {
	cfg := search.DefaultConfig()
	cfg.TargetLatency = 200
	if n := latencyMissNote(210, cfg); n != "" {
		t.Errorf("5%% over the target: note %q, want none", n)
	}
	n := latencyMissNote(318.4, cfg)
	for _, want := range []string{"1.59x the target 200.0 µs", "--loss-beta (now 0.3)"} {
		if !strings.Contains(n, want) {
			t.Errorf("note %q lacks %q", n, want)
		}
	}
	cfg.LatencyLoss = search.LossNone
	if n := latencyMissNote(400, cfg); n != "" {
		t.Errorf("no latency loss: note %q, want none", n)
	}
}

// A search with --lut and no --target optimises for the table's target:
// it says so, and the derived network records that target, not amd64.
func TestSearchTargetFromTable(t *testing.T) {
	spacePath, lutPath := tinySetup(t)
	lut, err := targets.Load(lutPath)
	if err != nil {
		t.Fatal(err)
	}
	lut.Target, lut.KernelSet = "amd64-avx512", "avx512"
	if err := lut.Save(lutPath); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	m, out := runForModel(t, dir, searchArgs(spacePath, lutPath, dir, "--epochs", "1", "--train-epochs", "0"))
	if !strings.Contains(out, "(target amd64-avx512)") {
		t.Errorf("output does not name the table's target:\n%s", out)
	}
	if m.Metadata.Search == nil || m.Metadata.Search.Target != "amd64-avx512" {
		t.Errorf("derived model's search info %+v, want target amd64-avx512", m.Metadata.Search)
	}
}
