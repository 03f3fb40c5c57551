package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pnasml/pnas/search"
	"github.com/pnasml/pnas/search/space"
	"github.com/pnasml/pnas/targets"
)

// TestLUTIngestRecipe follows what pnas profile --no-run prints: run every
// network of the profiling program, ingest all the reports. The table
// covers the space and a search's latency model accepts it. Ingesting only
// some reports is refused and leaves the output alone; --partial writes it
// with a warning.
func TestLUTIngestRecipe(t *testing.T) {
	spacePath, _ := tinySetup(t)
	dir := t.TempDir()
	prof := filepath.Join(dir, "prof")
	target := "amd64"
	if tg, err := targets.Lookup(target); err != nil || tg.HostSupports() != nil {
		target = "generic"
	}
	// 15 timed runs a program: the ingest fits the whole-network
	// correction to these medians, and with 5 a burst of load from the
	// packages tested beside this one once made a 110 µs program read
	// 1550 µs and the fitted scale negative.
	code, out, errs := runCLI(t, "profile", "--space", spacePath, "--target", target, "--no-run", "--dir", prof, "--runs", "15", "--random", "2")
	if code != 0 {
		t.Fatalf("profile --no-run: exit %d: %s", code, errs)
	}
	var runCmd, ingest string
	for _, l := range strings.Split(out, "\n") {
		if s, ok := strings.CutPrefix(l, "run on the device: "); ok {
			runCmd = s
		}
		if s, ok := strings.CutPrefix(l, "then: "); ok {
			ingest = s
		}
	}
	if runCmd == "" || ingest == "" {
		t.Fatalf("profile --no-run printed no recipe:\n%s", out)
	}
	dev := filepath.Join(dir, "dev")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(prof, "model"), filepath.Join(dev, "model")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-c", runCmd)
	cmd.Dir = dev
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", runCmd, err, b)
	}
	reports, _ := filepath.Glob(filepath.Join(dev, "*.json"))
	if len(reports) < 3 {
		t.Fatalf("the recipe wrote %d reports", len(reports))
	}
	// The printed ingest command, with its *.json and TABLE.json filled in.
	table := filepath.Join(dir, "lut.json")
	args := strings.Fields(ingest)[1:]
	var full []string
	for _, a := range args {
		switch a {
		case "*.json":
			full = append(full, reports...)
		case "TABLE.json":
			full = append(full, table)
		default:
			full = append(full, a)
		}
	}
	// The space is named by its file here, as pnas profile was given it.
	for i, a := range full {
		if a == "--space" {
			full[i+1] = spacePath
		}
	}
	if code, _, errs := runCLI(t, full...); code != 0 {
		t.Fatalf("%q: exit %d: %s", full, code, errs)
	}
	lut, err := targets.Load(table)
	if err != nil {
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
	if _, err := search.NewLatencyModel(plan, lut.SearchTable()); err != nil {
		t.Errorf("the ingested table does not serve a search: %v", err)
	}
	if lut.Correction == nil {
		t.Errorf("the random networks' reports fitted no correction")
	}

	// Only the first network: refused, the existing table untouched.
	before, _ := os.ReadFile(table)
	var first string
	for _, r := range reports {
		if !strings.Contains(filepath.Base(r), "random-") {
			first = r
			break
		}
	}
	code, _, errs = runCLI(t, "lut", "ingest", first, "--space", spacePath, "-o", table)
	if code == 0 || !strings.Contains(errs, "latency keys of space") || !strings.Contains(errs, "--partial") {
		t.Errorf("one report: exit %d, stderr %q; want a refusal naming the coverage", code, errs)
	}
	if after, _ := os.ReadFile(table); string(after) != string(before) {
		t.Errorf("a refused ingest changed the table")
	}
	part := filepath.Join(dir, "part.json")
	code, _, errs = runCLI(t, "lut", "ingest", first, "--space", spacePath, "-o", part, "--partial")
	if code != 0 || !strings.Contains(errs, "warning:") {
		t.Errorf("--partial: exit %d, stderr %q", code, errs)
	}
	if _, err := targets.Load(part); err != nil {
		t.Errorf("--partial wrote no table: %v", err)
	}
}
