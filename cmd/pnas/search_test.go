package main

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/interp"
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

func searchArgs(spacePath, lutPath, dir string, extra ...string) []string {
	return append([]string{"search", "--space", spacePath, "--lut", lutPath, "--data", "fashion-mnist-subset",
		"--train-limit", "96", "--held-out", "32", "--batch", "8", "--arch-batch", "8", "--arch-every", "2",
		"--warmup-epochs", "1", "--epochs", "2", "--train-epochs", "1", "--checkpoint-every", "3", "--latency-target", "20us",
		"--seed", "3", "-o", dir}, extra...)
}

// A search killed with SIGKILL and resumed from its last checkpoint derives
// the same architecture and bit-identical weights as an uninterrupted run,
// and its outputs are complete.
func TestSearchKillResume(t *testing.T) {
	spacePath, lutPath := tinySetup(t)
	base := t.TempDir()

	full := filepath.Join(base, "full")
	code, out, errs := runCLI(t, searchArgs(spacePath, lutPath, full)...)
	if code != 0 {
		t.Fatalf("search failed (%d): %s\n%s", code, errs, out)
	}
	for _, f := range []string{"model.json", "model.safetensors", "log.jsonl", "alpha.jsonl", "checkpoint.bin", "search.json", "alpha.png", "arch.png", "latency-accuracy.png"} {
		if _, err := os.Stat(filepath.Join(full, f)); err != nil {
			t.Errorf("run directory lacks %s", f)
		}
	}
	recs, err := readEpochs(filepath.Join(full, logFile))
	if err != nil || len(recs) != 4 {
		t.Fatalf("log.jsonl: %d epochs (%v), want 4", len(recs), err)
	}
	if recs[2].Train || !recs[3].Train || !recs[0].Warmup {
		t.Errorf("log.jsonl: epochs marked warm-up %v %v %v %v, train %v %v %v %v; want warm-up, search, search, train",
			recs[0].Warmup, recs[1].Warmup, recs[2].Warmup, recs[3].Warmup, recs[0].Train, recs[1].Train, recs[2].Train, recs[3].Train)
	}
	m, err := ir.Load(filepath.Join(full, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Metadata.Search == nil || m.Metadata.Search.LatencyTable == "" || len(m.Metadata.Search.Alpha) != 3 {
		t.Fatalf("derived model lacks provenance: %+v", m.Metadata.Search)
	}
	if _, err := interp.Run(m, make([]float32, 28*28), 1); err != nil {
		t.Fatalf("derived model does not run in the interpreter: %v", err)
	}

	// the same search, killed once it has checkpointed past epoch 0
	killed := filepath.Join(base, "killed")
	cmd := exec.Command(os.Args[0], searchArgs(spacePath, lutPath, killed)...)
	cmd.Env = append(os.Environ(), "PNAS_TEST_MAIN=1")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if b, _ := os.ReadFile(filepath.Join(killed, logFile)); bytes.Count(b, []byte("\n")) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no epoch logged in time:\n%s", buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond) // land somewhere inside epoch 1
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(killed, "model.json")); err == nil {
		t.Skip("the search finished before it could be killed; nothing to resume")
	}
	code, out, errs = runCLI(t, "search", "--resume", killed)
	if code != 0 {
		t.Fatalf("resume failed (%d): %s\n%s", code, errs, out)
	}
	if !strings.Contains(out, "resuming at epoch") {
		t.Errorf("resume output lacks the position:\n%s", out)
	}
	for _, f := range []string{"model.safetensors", "log.jsonl", "alpha.jsonl"} {
		a, _ := os.ReadFile(filepath.Join(full, f))
		b, _ := os.ReadFile(filepath.Join(killed, f))
		if f == "log.jsonl" {
			a, b = dropSeconds(a), dropSeconds(b)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between the uninterrupted and the killed-and-resumed run", f)
		}
	}
	mk, err := ir.Load(filepath.Join(killed, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(mk.Metadata.Search.Choices, ",") != strings.Join(m.Metadata.Search.Choices, ",") {
		t.Errorf("architectures differ: %v vs %v", mk.Metadata.Search.Choices, m.Metadata.Search.Choices)
	}
}

// dropSeconds removes the wall-clock field from log lines.
func dropSeconds(b []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if i := strings.Index(l, `"seconds":`); i >= 0 {
			l = l[:i]
		}
		out = append(out, l)
	}
	return []byte(strings.Join(out, "\n"))
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
	args := searchArgs(spacePath, lutPath, dir, "--loss", "add#linear", "--loss-lambda", "20", "--arch-lr", "0.05", "--epochs", "3", "--train-epochs", "0")
	code, out, errs := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("search failed (%d): %s\n%s", code, errs, out)
	}
	m, err := ir.Load(filepath.Join(dir, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
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
