package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/search"
)

// pnas sample --latency-target draws random architectures whose predicted
// latency lies within the tolerance band, the same ones for the same seed,
// and refuses a target no network of the space reaches.
func TestSampleAtLatency(t *testing.T) {
	spacePath, lutPath, plan, lut, lm := tinyLatency(t)
	fast, slow := extremes(plan, lm)
	target := (fast + slow) / 2
	arg := fmt.Sprintf("%.2fus", target)
	want, err := parseMicros(arg)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "nets")
	code, out, errs := runCLI(t, "sample", "--space", spacePath, "-n", "3", "--seed", "7", "--latency-target", arg, "--tolerance", "0.25", "--lut", lutPath, "-o", dir)
	if code != 0 {
		t.Fatalf("sample: exit %d: %s", code, errs)
	}
	for i := range 3 {
		name := fmt.Sprintf("tiny-random-%s-%d.json", arg, i)
		m, err := ir.Load(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		got, err := lut.PredictModel(m)
		if err != nil {
			t.Fatal(err)
		}
		if got < want*0.75-1e-9 || got > want*1.25+1e-9 {
			t.Errorf("%s: predicted %.2f µs, outside %.2f µs ± 25%%", name, got, want)
		}
		if !strings.Contains(out, "µs predicted") {
			t.Errorf("output lacks the predicted latency:\n%s", out)
		}
	}
	_, out2, _ := runCLI(t, "sample", "--space", spacePath, "-n", "3", "--seed", "7", "--latency-target", arg, "--tolerance", "0.25", "--lut", lutPath, "-o", t.TempDir())
	if choiceOf(out, "tiny-random-"+arg+"-2.json") != choiceOf(out2, "tiny-random-"+arg+"-2.json") {
		t.Errorf("different draws with the same seed:\n%s\n%s", out, out2)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "1", "--latency-target", "0.001us"}, "unreachable"},
		{[]string{"--uniform", "k3e3", "--latency-target", arg}, "expected -n N"},
		{[]string{"-n", "1", "--latency-target", arg, "--tolerance", "1.5"}, "--tolerance: expected a value in (0, 1), got 1.5"},
	} {
		out := filepath.Join(t.TempDir(), "none")
		args := append([]string{"sample", "--space", spacePath, "--lut", lutPath, "-o", out}, tc.args...)
		if code, _, errs := runCLI(t, args...); code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, %q; want an error with %q", tc.args, code, errs, tc.want)
		}
		if _, err := ir.Load(filepath.Join(out, "tiny-random-0.json")); err == nil {
			t.Errorf("%v: wrote a model despite the error", tc.args)
		}
	}
}

// pnas search --derive budget derives a network that spends the target:
// with a latency loss pushing every layer toward its fastest candidate,
// argmax would take the fastest network; budget takes the most probable one
// in [0.9 T, T] (or under T when that band holds none).
func TestSearchDeriveBudget(t *testing.T) {
	spacePath, lutPath, plan, lut, lm := tinyLatency(t)
	fast, slow := extremes(plan, lm)
	target := fast + 0.6*(slow-fast)
	reach := reachable(plan, lm, target) // the best latency reachable under the target
	dir := filepath.Join(t.TempDir(), "budget")
	m, out := runForModel(t, dir, searchArgs(spacePath, lutPath, dir, "--loss", "add#hinge", "--loss-lambda", "20", "--arch-lr", "0.05",
		"--train-epochs", "0", "--derive", "budget", "--latency-target", fmt.Sprintf("%.3fus", target)))
	got, err := lut.PredictModel(m)
	if err != nil {
		t.Fatal(err)
	}
	lo := target * (1 - search.DeriveBand)
	if reach < lo {
		lo = fast // the band is empty: the most probable network under T
	}
	if got > target+1e-6 || got < lo-1e-6 {
		t.Errorf("derived network predicted at %.3f µs; want within [%.3f, %.3f] (fastest %.3f, slowest %.3f)\n%s", got, lo, target, fast, slow, out)
	}
	if reach >= target*(1-search.DeriveBand) && got < target*(1-search.DeriveBand)-1e-6 {
		t.Errorf("derived network at %.3f µs although the band below %.3f µs holds a network at %.3f µs", got, target, reach)
	}
}
