package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/search"
	"github.com/pnasml/pnas/search/space"
)

// TestDerive derives from one finished search (--loss none: the
// architecture steps never read the target) at its own target, which must
// reproduce the search's model byte for byte, and at a larger budget, which
// must land in that budget's band and equal a search at that budget; and
// checks the usage errors.
func TestDerive(t *testing.T) {
	spacePath, lutPath, plan, lut, lm := tinyLatency(t)
	fast, slow := extremes(plan, lm)
	t1, t2 := fast+0.3*(slow-fast), fast+0.8*(slow-fast)
	root := t.TempDir()
	run := filepath.Join(root, "s")
	m, _ := runForModel(t, run, searchArgs(spacePath, lutPath, run, "--loss", "none", "--derive", "budget", "--train-epochs", "0",
		"--latency-target", fmt.Sprintf("%.3fus", t1)))

	derive := func(dir string, args ...string) (*ir.Model, string) {
		t.Helper()
		return runForModel(t, dir, append([]string{"derive", run, "-o", dir}, args...))
	}
	same := filepath.Join(root, "same")
	dm, _ := derive(same, "--latency-target", fmt.Sprintf("%.3fus", t1))
	if !slices.Equal(dm.Metadata.Search.Choices, m.Metadata.Search.Choices) {
		t.Fatalf("derived at the search's own target: %v, the search derived %v", dm.Metadata.Search.Choices, m.Metadata.Search.Choices)
	}
	a, _ := os.ReadFile(filepath.Join(run, "model.safetensors"))
	b, _ := os.ReadFile(filepath.Join(same, "model.safetensors"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("weights derived at the search's own target differ from the search's (%d and %d bytes)", len(a), len(b))
	}

	wide := filepath.Join(root, "wide")
	wm, out := derive(wide, "--latency-target", fmt.Sprintf("%.3fus", t2), "--lut", lutPath)
	got, err := lut.PredictModel(wm)
	if err != nil {
		t.Fatal(err)
	}
	if got > t2+1e-6 || got < t2*(1-search.DeriveBand)-1e-6 {
		// the band may be empty in a tiny space: then the most probable network under T
		if reach := reachable(plan, lm, t2); reach >= t2*(1-search.DeriveBand) || got > t2+1e-6 {
			t.Errorf("derived at %.3f µs for a budget of %.3f µs (best reachable %.3f)\n%s", got, t2, reach, out)
		}
	}
	// a search at the larger budget itself writes the same network
	other := filepath.Join(root, "s2")
	runForModel(t, other, searchArgs(spacePath, lutPath, other, "--loss", "none", "--derive", "budget", "--train-epochs", "0",
		"--latency-target", fmt.Sprintf("%.3fus", t2)))
	a2, _ := os.ReadFile(filepath.Join(other, "model.safetensors"))
	b2, _ := os.ReadFile(filepath.Join(wide, "model.safetensors"))
	if len(a2) == 0 || !bytes.Equal(a2, b2) {
		t.Fatalf("derived at %.3f µs: weights differ from a search at that target (%d and %d bytes)", t2, len(b2), len(a2))
	}
	if _, err := os.Stat(filepath.Join(wide, "arch.png")); err != nil {
		t.Errorf("no arch.png beside the derived model: %v", err)
	}

	// usage and state errors; none writes into the search's directory
	trained := filepath.Join(root, "trained")
	runForModel(t, trained, searchArgs(spacePath, lutPath, trained, "--loss", "none", "--derive", "budget"))
	stopped := filepath.Join(root, "stopped")
	if code, out, errs := runCLI(t, append(searchArgs(spacePath, lutPath, stopped, "--loss", "none", "--derive", "budget", "--train-epochs", "0"), "--stop-after", "2")...); code != 0 {
		t.Fatalf("stopped search failed (%d): %s\n%s", code, errs, out)
	}
	before, _ := os.ReadFile(filepath.Join(run, "model.json"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"derive", run, "-o", run, "--latency-target", "1ms"}, "other than the search's own"},
		{[]string{"derive", run, "-o", filepath.Join(root, "x1")}, "--latency-target: expected"},
		{[]string{"derive", run, "-o", filepath.Join(root, "x2"), "--latency-target", fmt.Sprintf("%.3fus", fast/2)}, "unreachable"},
		{[]string{"derive", stopped, "-o", filepath.Join(root, "x3"), "--latency-target", "1ms"}, "finish it first with: pnas search --resume"},
		{[]string{"derive", trained, "-o", filepath.Join(root, "x4"), "--latency-target", "1ms"}, "--train-epochs 0"},
		{[]string{"derive", filepath.Join(root, "nothing"), "-o", filepath.Join(root, "x5"), "--latency-target", "1ms"}, "not a run directory"},
	} {
		code, out, errs := runCLI(t, tc.args...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want an error containing %q", tc.args, code, errs, out, tc.want)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(run, "model.json")); !bytes.Equal(before, after) {
		t.Error("a failed pnas derive changed the search's model.json")
	}
}

// reachable is the largest predicted latency of a network of plan at most
// t, by enumeration (0 if none).
func reachable(p *space.Plan, lm *search.LatencyModel, t float64) float64 {
	best := 0.0
	choice := make([]int, len(p.Layers))
	var walk func(l int)
	walk = func(l int) {
		if l == len(choice) {
			if v := lm.Of(choice); v <= t && v > best {
				best = v
			}
			return
		}
		for j := range p.Layers[l].Candidates {
			choice[l] = j
			walk(l + 1)
		}
	}
	walk(0)
	return best
}
