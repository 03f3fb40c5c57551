package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pnasml/pnas/ir"
)

// pnas search --gates reinforce runs REINFORCE architecture steps and
// records the mode in the derived model, which pnas train --init trains on.
func TestSearchReinforce(t *testing.T) {
	spacePath, lutPath := tinySetup(t)
	dir := filepath.Join(t.TempDir(), "run")
	code, out, errs := runCLI(t, searchArgs(spacePath, lutPath, dir, "--gates", "reinforce", "--rl-samples", "3", "--rl-weight=-0.5", "--arch-lr", "0.05")...)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errs, out)
	}
	m, err := ir.Load(filepath.Join(dir, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	info := m.Metadata.Search
	if info.GateMode != "reinforce" {
		t.Fatalf("gate mode %q", info.GateMode)
	}
	moved := false
	for _, a := range info.Alpha {
		for _, v := range a {
			if v > 1e-2 || v < -1e-2 {
				moved = true
			}
		}
	}
	if !moved {
		t.Errorf("alpha did not move: %v", info.Alpha)
	}
	if _, err := os.Stat(filepath.Join(dir, "alpha-logodds.png")); err != nil {
		t.Error(err)
	}
	// the searched network trains on, from its inherited weights
	if code, _, errs := runCLI(t, trainArgs(spacePath, filepath.Join(dir, "model.json"), filepath.Join(t.TempDir(), "train"), "--init", "--epochs", "1", "--warmup-epochs", "0")...); code != 0 {
		t.Fatalf("train --init of the searched model: exit %d: %s", code, errs)
	}
}
