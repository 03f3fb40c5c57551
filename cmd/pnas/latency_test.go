package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pnasml/pnas/targets"
)

// On a few small networks, timed for real, calibration reduces the
// prediction error: profile the tiny space into a table without a
// correction, time random whole networks, calibrate, and compare the plain
// table sum before with the calibrated predictor after (in-sample: the
// relative least-squares fit can only lower the relative error it
// minimises, so the test does not depend on a quiet machine) — and check
// the CLI path writes a new table.
func TestCalibrationReducesError(t *testing.T) {
	spacePath, _ := tinySetup(t)
	dir := t.TempDir()
	lut := filepath.Join(dir, "lut.json")
	code, out, errs := runCLI(t, "profile", "--space", spacePath, "--target", "generic", "-o", lut,
		"--dir", filepath.Join(dir, "prof"), "--runs", "40", "--random", "0")
	if code != 0 {
		t.Fatalf("profile (%d): %s\n%s", code, errs, out)
	}
	table, err := targets.Load(lut)
	if err != nil {
		t.Fatal(err)
	}
	if table.Correction != nil {
		t.Fatal("profile --random 0 fitted a correction")
	}
	// a second program: the profiling networks plus 6 random ones
	code, out, errs = runCLI(t, "profile", "--space", spacePath, "--target", "generic", "--no-run",
		"--dir", filepath.Join(dir, "nets"), "--random", "6", "--seed", "9")
	if code != 0 {
		t.Fatalf("profile --no-run (%d): %s", code, errs)
	}
	bin := filepath.Join(dir, "nets", "model")
	list, err := exec.Command(bin, "-list").Output()
	if err != nil {
		t.Fatal(err)
	}
	var reports []*targets.BenchReport
	for _, line := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		name, _, _ := strings.Cut(line, "\t")
		b, err := exec.Command(bin, "-model", name, "-bench", "40", "-json", "-threads", "1").Output()
		if err != nil {
			t.Fatal(err)
		}
		r, err := targets.ParseBench(b)
		if err != nil {
			t.Fatal(err)
		}
		reports = append(reports, r)
	}
	_, rep, err := targets.Calibrate(table, reports, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep)
	if !(rep.AfterPredictor.MAPE < rep.BeforePlain.MAPE) {
		t.Errorf("calibration did not reduce the error: MAPE %.2f%% before, %.2f%% after", rep.BeforePlain.MAPE, rep.AfterPredictor.MAPE)
	}

	// the command: appends to the log, writes a table with a new identity
	log := filepath.Join(dir, "m.jsonl")
	newLUT := filepath.Join(dir, "lut2.json")
	code, out, errs = runCLI(t, "calibrate", "--table", lut, "--log", log, "--run", bin, "--runs", "20", "--threads", "1", "-o", newLUT)
	if code != 0 {
		t.Fatalf("calibrate (%d): %s\n%s", code, errs, out)
	}
	if !strings.Contains(out, "after, predictor") {
		t.Errorf("calibrate output lacks the error table:\n%s", out)
	}
	t2, err := targets.Load(newLUT)
	if err != nil {
		t.Fatal(err)
	}
	if t2.ID() == table.ID() || t2.Correction == nil {
		t.Errorf("refitted table: id %s (old %s), correction %v", t2.ID(), table.ID(), t2.Correction)
	}
	recs, err := targets.ReadMeasurements(log)
	if err != nil || len(recs) != len(reports) {
		t.Fatalf("measurement log: %d records (%v), want %d", len(recs), err, len(reports))
	}
	// a foreign report is rejected with the file named
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"schema":"pnas-bench/9"}`), 0o644)
	code, _, errs = runCLI(t, "calibrate", "--table", lut, "--log", log, "--binary", bin, bad)
	if code == 0 || !strings.Contains(errs, "bad.json") {
		t.Errorf("foreign report: exit %d, stderr %q", code, errs)
	}
}
