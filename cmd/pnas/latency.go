package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/pnasml/pnas/internal/atomicfile"
	"github.com/pnasml/pnas/internal/device"
	"github.com/pnasml/pnas/search/space"
	"github.com/pnasml/pnas/targets"
)

// LUTCmd groups latency-table commands.
type LUTCmd struct {
	Ingest LUTIngestCmd `cmd:"" help:"Build a latency table from the JSON output of a profiling program run on the device."`
	Show   LUTShowCmd   `cmd:"" help:"Print a latency table's identity, provenance and entries."`
}

// LUTIngestCmd builds a table from bench reports.
type LUTIngestCmd struct {
	Reports []string `arg:"" help:"Bench reports (the JSON a profiling program prints with -bench N -json)." type:"existingfile"`
	Space   string   `help:"Search space the table covers." default:"fmnist"`
	Target  string   `help:"Target name the reports must have been measured for (default: the reports' own)."`
	Output  string   `short:"o" help:"Latency table to write (atomically)." required:""`
	Partial bool     `help:"Write the table even when the reports do not cover every latency key of the space (a search on it fails)."`
}

// Help gives examples.
func (LUTIngestCmd) Help() string {
	return `'pnas profile --no-run' builds a profiling program: one network per
candidate op and position of the space (plus random whole networks, named
random-NN, for the whole-network correction). Run every network of it on
the device and ingest all the reports ('pnas profile --device ssh://HOST'
does all of this itself):

  pnas profile --space fmnist --target arm64 --no-run --dir prof/
  scp prof/model dev:profile                                # to the device
  ssh dev 'for m in $(./profile -list | cut -f1); do ./profile -model $m -threads 1 -bench 200 -json > $m.json; done'
  scp 'dev:*.json' reports/                                 # back here
  pnas lut ingest reports/*.json --space fmnist -o lut-mydevice.json

The table must cover every latency key of the space, or ingest refuses
(--partial writes it anyway). Reports of the random-NN networks fit the
table's whole-network correction.`
}

func readReports(paths []string) ([]*targets.BenchReport, error) {
	var out []*targets.BenchReport
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		r, err := targets.ParseBench(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Run builds the table.
func (c *LUTIngestCmd) Run(g *globals) error {
	reports, err := readReports(c.Reports)
	if err != nil {
		return err
	}
	target := c.Target
	if target == "" {
		target = reports[0].Target
	}
	sp, err := space.Open(c.Space)
	if err != nil {
		return err
	}
	plan, err := sp.Plan()
	if err != nil {
		return err
	}
	var profile, random []*targets.BenchReport
	for _, r := range reports {
		if strings.HasPrefix(r.Model, "random-") {
			random = append(random, r)
		} else {
			profile = append(profile, r)
		}
	}
	if len(profile) == 0 {
		profile = reports
	}
	lut, err := targets.BuildLUT(target, sp.Name, profile)
	if err != nil {
		return err
	}
	if t, err := targets.Lookup(target); err == nil {
		if err := lut.Matches(t); err != nil {
			return fmt.Errorf("the reports do not fit target %s (run the program with -threads %d, the target's): %w", t.Name, t.Threads, err)
		}
	}
	if missing := missingKeys(plan, lut); len(missing) > 0 {
		err := coverageError(sp.Name, len(spaceKeys(plan)), missing)
		if !c.Partial {
			return err
		}
		fmt.Fprintf(g.stderr, "pnas: warning: %v\n", err)
	}
	if len(random) > 0 && len(random) < len(reports) {
		var nets []targets.MeasuredNetwork
		for _, r := range random {
			nets = append(nets, targets.NetworkFromReport(r))
		}
		corr, err := targets.Fit(lut, nets)
		if err != nil {
			return fmt.Errorf("fitting the whole-network correction: %w", err)
		}
		lut.Correction = corr
		fmt.Fprintf(g.stdout, "whole-network correction from %d random networks: %.2f µs + %.4f x table sum (in-sample MAPE %.2f%%)\n",
			len(random), corr.InterceptUS, corr.Scale, corr.FitMAPE)
	}
	if err := lut.Save(c.Output); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "latency table %s: %d entries for space %s on %s (%s, %d threads, %s) -> %s\n",
		lut.ID(), len(lut.Entries), lut.Space, lut.Target, lut.KernelSet, lut.Threads, lut.Machine.CPU, c.Output)
	return nil
}

// LUTShowCmd prints a table.
type LUTShowCmd struct {
	Table string `arg:"" help:"Latency table (JSON)." type:"existingfile"`
}

// Help gives examples.
func (LUTShowCmd) Help() string {
	return "Example:\n  pnas lut show targets/luts/amd64-fmnist.json"
}

// Run prints.
func (c *LUTShowCmd) Run(g *globals) error {
	lut, err := targets.Load(c.Table)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "table %s: target %s, space %s, kernel set %s, %d threads, cpu %q (%d cores), %s\n",
		lut.ID(), lut.Target, lut.Space, lut.KernelSet, lut.Threads, lut.Machine.CPU, lut.Machine.Cores, lut.GoVersion)
	if c := lut.Correction; c != nil {
		fmt.Fprintf(g.stdout, "correction: %.2f µs + %.4f x sum (fitted on %d networks, MAPE %.2f%%)\n", c.InterceptUS, c.Scale, c.Networks, c.FitMAPE)
	}
	for _, k := range lut.Keys() {
		e := lut.Entries[k]
		fmt.Fprintf(g.stdout, "%10.2f µs  (mean %.2f, sd %.2f, n %d)  %s\n", e.MedianUS, e.MeanUS, math.Sqrt(e.VarUS2), e.Count, k)
	}
	return nil
}

// CalibrateCmd appends measurements and refits a table.
type CalibrateCmd struct {
	Table   string   `help:"Latency table to refit." required:"" type:"existingfile"`
	Log     string   `help:"Append-only measurement log (JSONL); created if missing." required:""`
	Reports []string `arg:"" optional:"" help:"Bench reports (model -bench N -json output) to append to the log first." type:"existingfile"`
	Binary  string   `help:"The deployed binary the reports came from (its SHA-256 is recorded)." type:"existingfile"`
	Exec    []string `name:"run" help:"Run these compiled programs here (every model of a multi-model program) with -bench and append their reports." type:"existingfile"`
	Runs    int      `help:"Timed runs per program with --run." default:"200"`
	Threads int      `help:"Threads for --run (0 = the table's)." default:"0"`
	Holdout float64  `help:"Fraction of the measured networks held out to report the error on." default:"0.25"`
	Seed    uint64   `help:"Seed of the held-out draw." default:"1"`
	Output  string   `short:"o" help:"Where to write the refitted table (default: replace --table atomically)."`
	DeviceFlags
}

// Help gives examples.
func (CalibrateCmd) Help() string {
	return `Deployed programs measure themselves ('model -bench 200 -json'). Feed their
reports back so the next search optimises against what the hardware did:

  ./model -bench 200 -json > m1.json                               # on the device
  pnas calibrate --table lut.json --log measurements.jsonl --binary ./model m1.json
  pnas calibrate --table lut.json --log measurements.jsonl --run out/a/model --run out/b/model
  pnas calibrate --table lut.json --log measurements.jsonl --run out/a/model --device ssh://pi@raspberrypi

The table entries are refitted from per-layer timings, the whole-network
correction from total timings; the error before and after is reported on
networks held out from the fit. The refitted table gets a new identity.`
}

// Run calibrates. Nothing is written unless the whole command succeeds:
// the new reports are checked and the table refitted in memory first; the
// refitted table is written beside its path, the log appended to, and only
// then the table renamed into place.
func (c *CalibrateCmd) Run(g *globals) error {
	if !(c.Holdout >= 0 && c.Holdout < 1) {
		return &exitError{code: 2, err: fmt.Errorf("--holdout: expected a fraction in [0, 1), got %v", c.Holdout)}
	}
	if c.Runs < 1 {
		return &exitError{code: 2, err: fmt.Errorf("--runs: expected at least 1, got %d", c.Runs)}
	}
	if c.Threads < 0 {
		return &exitError{code: 2, err: fmt.Errorf("--threads: expected >= 0, got %d", c.Threads)}
	}
	if len(c.Reports) > 0 && c.Binary == "" {
		return &exitError{code: 2, err: fmt.Errorf("--binary: needed with report files, so the log records which program was measured")}
	}
	dev, err := c.open()
	if err != nil {
		return err
	}
	if dev.Emulated() {
		return emulatedRefusal("calibrate a latency table")
	}
	lut, err := targets.Load(c.Table)
	if err != nil {
		return err
	}
	reports, err := readReports(c.Reports)
	if err != nil {
		return err
	}
	var recs []*targets.Measurement
	for i, r := range reports {
		if err := matchesTable(r, lut, c.Table); err != nil {
			return fmt.Errorf("%s: %w", c.Reports[i], err)
		}
		m, err := targets.NewMeasurement(r, c.Binary, "")
		if err != nil {
			return fmt.Errorf("%s: %w", c.Reports[i], err)
		}
		recs = append(recs, m)
	}
	threads := c.Threads
	if threads == 0 {
		threads = lut.Threads
	}
	ctx := context.Background()
	for _, bin := range c.Exec {
		names, err := installAndList(ctx, dev, bin)
		if err != nil {
			return err
		}
		for _, name := range names {
			r, err := device.Bench(ctx, dev, name, c.Runs, "-threads", fmt.Sprint(threads))
			if err != nil {
				dev.Close()
				return fmt.Errorf("%s: %w", bin, err)
			}
			if err := matchesTable(r, lut, c.Table); err != nil {
				return fmt.Errorf("%s -model %s: %w", bin, name, err)
			}
			m, err := targets.NewMeasurement(r, bin, "")
			if err != nil {
				return fmt.Errorf("%s: %w", bin, err)
			}
			recs = append(recs, m)
			fmt.Fprintf(g.stderr, "measured %s on %s: %.1f µs median\n", name, dev, r.TotalUS())
		}
		if err := dev.Close(); err != nil {
			return err
		}
	}
	logged, err := targets.ReadMeasurements(c.Log)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	all := append(logged, recs...)
	if len(all) == 0 {
		return &exitError{code: 2, err: fmt.Errorf("no measurements: give bench reports (with --binary), --run PROGRAM, or a --log that holds some")}
	}
	newLUT, rep, err := targets.Calibrate(lut, targets.Reports(all), c.Holdout, c.Seed)
	if err != nil {
		return err
	}
	out := c.Output
	if out == "" {
		out = c.Table
	}
	b, err := newLUT.Marshal()
	if err != nil {
		return err
	}
	pending, err := atomicfile.Prepare(out, b)
	if err != nil {
		return err
	}
	if err := targets.AppendMeasurements(c.Log, recs...); err != nil {
		pending.Abort()
		return err
	}
	if err := pending.Commit(); err != nil {
		return err
	}
	fmt.Fprint(g.stdout, rep.String())
	if len(recs) > 0 {
		fmt.Fprintf(g.stdout, "appended %d measurements to %s (%d in all)\n", len(recs), c.Log, len(all))
	}
	fmt.Fprintf(g.stdout, "wrote %s (%s)\n", out, newLUT.ID())
	return nil
}

// matchesTable checks that a report was measured the way the table was
// (target, kernel set, threads, machine), naming the program flag that
// fixes a thread mismatch.
func matchesTable(r *targets.BenchReport, lut *targets.LUT, table string) error {
	switch {
	case r.Target != lut.Target:
		return fmt.Errorf("target: measured a program compiled for %q, the table %s is for %q", r.Target, table, lut.Target)
	case r.Threads != lut.Threads:
		return fmt.Errorf("threads: measured with %d threads, the table %s is for %d; run the program with -threads %d (e.g. model -bench 300 -json -threads %d)", r.Threads, table, lut.Threads, lut.Threads, lut.Threads)
	case r.KernelSet != lut.KernelSet:
		return fmt.Errorf("kernel_set: measured with kernel set %q, the table %s is for %q", r.KernelSet, table, lut.KernelSet)
	case r.CPU != lut.Machine.CPU || r.Cores != lut.Machine.Cores:
		return fmt.Errorf("cpu: measured on %q with %d cores, the table %s on %q with %d cores; build a table for this machine with pnas profile", r.CPU, r.Cores, table, lut.Machine.CPU, lut.Machine.Cores)
	}
	return nil
}
