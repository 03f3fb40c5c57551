package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/pnasml/pnas/codegen"
	"github.com/pnasml/pnas/internal/archnet"
	"github.com/pnasml/pnas/internal/device"
	"github.com/pnasml/pnas/internal/progress"
	"github.com/pnasml/pnas/search/space"
	"github.com/pnasml/pnas/targets"
)

// ProfileCmd builds a latency table by timing generated code.
type ProfileCmd struct {
	Space      string `help:"Search space: a built-in name (${spaces}) or a JSON file." default:"fmnist"`
	Candidates string `help:"Candidates to profile (default: the space's)." placeholder:"k3e3,k5e6,..."`
	Target     string `help:"Target (default: the built-in target with the best kernels this machine runs)." placeholder:"NAME"`
	Output     string `short:"o" help:"Latency table to write (atomically)." placeholder:"TABLE.json"`
	Dir        string `help:"Where to write and build the profiling program." default:"out/profile" type:"path"`
	NoRun      bool   `name:"no-run" help:"Only write and build the program (to run on another device, then 'pnas lut ingest')."`
	Runs       int    `help:"Timed runs per network." default:"300"`
	Warmup     int    `help:"Untimed runs before timing (the program's own default when 0)." default:"0"`
	Threads    int    `help:"Threads (default: the target's)." default:"0"`
	Random     int    `help:"Random whole networks also measured to fit the table's whole-network correction." default:"12"`
	Seed       uint64 `help:"Seed of the weights and of the random networks." default:"1"`
	GOARCH     string `name:"goarch" help:"GOARCH for targets that leave it open (generic)."`
	DeviceFlags
}

// Help gives examples.
func (ProfileCmd) Help() string {
	return `Generates, through the same code generator and kernels as 'pnas compile',
one program holding every candidate op at every distinct position of the
space (one network per candidate, plus the fixed stem, first block, head and
classifier), times every block of it, and writes the latency table the
search reads. Random whole networks are timed as well, to fit the
whole-network correction of the predictor.

Examples:
  pnas profile --space fmnist --target amd64 -o lut-amd64.json
  # on a device over ssh (copies the program, runs it there, writes the table here)
  pnas profile --space fmnist --target arm64/cortex-a76 --device ssh://pi@raspberrypi -o lut-pi.json
  # arm64 programs under qemu-aarch64-static: every network runs (no table)
  pnas profile --space fmnist --target arm64 --device qemu --runs 5
  # by hand: build here, run there, ingest here
  pnas profile --space fmnist --target generic --goarch arm64 --no-run --dir out/prof-arm64
  scp out/prof-arm64/model pi:profile && ssh pi './profile -list'
  for m in $(ssh pi ./profile -list | cut -f1); do ssh pi "./profile -model $m -threads 1 -bench 300 -json" > $m.json; done
  pnas lut ingest *.json --space fmnist -o lut-pi.json
  # an NVIDIA GPU: a target file of device cuda (docs/cuda.md), then as above
  pnas profile --space fmnist --target lab/h200 --no-run --dir out/prof-h200`
}

// Run profiles.
func (c *ProfileCmd) Run(g *globals) error {
	dev, err := c.open()
	if err != nil {
		return err
	}
	switch {
	case dev.Emulated() && c.Output != "":
		return emulatedRefusal("make a latency table (drop -o to check that every network runs)")
	case !c.NoRun && !dev.Emulated() && c.Output == "":
		return &exitError{code: 2, err: fmt.Errorf("-o: expected the latency table file to write (or --no-run)")}
	}
	if c.Runs < 5 {
		return &exitError{code: 2, err: fmt.Errorf("--runs: expected at least 5, got %d", c.Runs)}
	}
	sp, err := space.Open(c.Space)
	if err != nil {
		return err
	}
	if c.Candidates != "" {
		sp = sp.Clone()
		sp.Candidates = strings.Split(c.Candidates, ",")
	}
	plan, err := sp.Plan()
	if err != nil {
		return err
	}
	t, err := resolveTarget(c.Target)
	if err != nil {
		return err
	}
	if dev.Emulated() {
		env, err := codegen.BuildOptions{Target: t, GOARCH: c.GOARCH}.BuildEnv()
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		if err := checkEmulatable(env); err != nil {
			return err
		}
	}
	rng := rand.New(rand.NewPCG(c.Seed, 7))
	nets, err := archnet.ProfileNets(plan, "profile", rng)
	if err != nil {
		return err
	}
	for i := 0; i < c.Random; i++ {
		m, err := archnet.Build(plan, archnet.Random(plan, rng), fmt.Sprintf("random-%02d", i), nil, rng)
		if err != nil {
			return err
		}
		nets = append(nets, m)
	}
	bin, err := codegen.GenerateAndBuild(nets, codegen.Options{Target: t, Module: "pnasmodel/profile-" + codegen.ModuleName(sp.Name)[len("pnasmodel/"):]},
		c.Dir, codegen.BuildOptions{Target: t, GOARCH: c.GOARCH})
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "profiling program for space %s on %s (%s kernels): %d networks -> %s\n", sp.Name, t.Name, t.KernelSet, len(nets), bin)
	if c.NoRun {
		threads := c.Threads
		if threads == 0 {
			threads = t.Threads
		}
		fmt.Fprintf(g.stdout, "run on the device: for m in $(./model -list | cut -f1); do ./model -model $m -threads %d -bench %d -json > $m.json; done\nthen: pnas lut ingest *.json --space %s -o TABLE.json\n", threads, c.Runs, sp.Name)
		return nil
	}
	if c.isLocal() {
		if err := t.HostSupports(); err != nil {
			return fmt.Errorf("cannot run the %s profiling program here (%v); use --device ssh://HOST, or --no-run and run it on the device", t.Name, err)
		}
	}
	threads := c.Threads
	if threads == 0 {
		threads = t.Threads
	}
	ctx := context.Background()
	if err := dev.Install(ctx, bin); err != nil {
		return err
	}
	defer dev.Close()
	bar := progress.New("profile", len(nets))
	defer bar.Done()
	var profile, random []*targets.BenchReport
	for i, m := range nets {
		args := []string{"-threads", fmt.Sprint(threads)}
		if c.Warmup > 0 {
			args = append(args, "-warmup", fmt.Sprint(c.Warmup))
		}
		r, err := device.Bench(ctx, dev, m.Name, c.Runs, args...)
		if err != nil {
			return err
		}
		if i < len(nets)-c.Random {
			profile = append(profile, r)
		} else {
			random = append(random, r)
		}
		bar.Add(1)
		bar.SetStatus("%s %.1f µs", m.Name, r.TotalUS())
	}
	bar.Done()
	if dev.Emulated() {
		for _, r := range append(profile, random...) {
			fmt.Fprintf(g.stdout, "%-24s %10.1f µs emulated (%s, %s kernels; not a latency)\n", r.Model, r.TotalUS(), dev, r.KernelSet)
		}
		fmt.Fprintf(g.stdout, "all %d networks ran under %s; no table written (emulated timings)\n", len(nets), dev)
		return nil
	}
	lut, err := targets.BuildLUT(t.Name, sp.Name, profile)
	if err != nil {
		return err
	}
	if len(random) > 0 {
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
	fmt.Fprintf(g.stdout, "latency table %s: %d entries (%s, %d threads, %s) -> %s\n", lut.ID(), len(lut.Entries), lut.KernelSet, lut.Threads, lut.Machine.CPU, c.Output)
	return nil
}
