// Command latbench measures how well latency tables predict the latency of
// whole networks: it draws random architectures of a search space, compiles
// them into one program, times each at batch 1, and compares the
// measurements with (1) the plain sum of the table's entries, (2) the
// table's own predictor (entries plus the whole-network correction that
// `pnas profile` fits on other random networks), and (3) the predictor after
// `targets.Calibrate` on half of these networks, evaluated on the other
// half. It is what `make bench-latency` runs; docs/latency.md records its
// output.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"

	"github.com/pnasml/pnas/codegen"
	"github.com/pnasml/pnas/internal/archnet"
	"github.com/pnasml/pnas/internal/device"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/search/space"
	"github.com/pnasml/pnas/targets"
)

func main() {
	lutPath := flag.String("lut", "", "latency table (from pnas profile)")
	spaceName := flag.String("space", "fmnist", "search space")
	n := flag.Int("n", 30, "random architectures")
	runs := flag.Int("runs", 300, "timed runs per network")
	seed := flag.Uint64("seed", 42, "seed of the architectures (use another than the profile's)")
	work := flag.String("work", "out/latbench", "work directory")
	flag.Parse()
	if err := run(*lutPath, *spaceName, *n, *runs, *seed, *work); err != nil {
		fmt.Fprintln(os.Stderr, "latbench:", err)
		os.Exit(1)
	}
}

func run(lutPath, spaceName string, n, runs int, seed uint64, work string) error {
	lut, err := targets.Load(lutPath)
	if err != nil {
		return err
	}
	t, err := targets.Lookup(lut.Target)
	if err != nil {
		return err
	}
	sp, err := space.Open(spaceName)
	if err != nil {
		return err
	}
	plan, err := sp.Plan()
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 11))
	var models []*ir.Model
	for i := 0; i < n; i++ {
		m, err := archnet.Build(plan, archnet.Random(plan, rng), fmt.Sprintf("arch-%02d", i), nil, rng)
		if err != nil {
			return err
		}
		models = append(models, m)
	}
	bin, err := codegen.GenerateAndBuild(models, codegen.Options{Target: t, Module: "pnasmodel/latbench"}, work, codegen.BuildOptions{Target: t})
	if err != nil {
		return err
	}
	dev, err := device.Open("local", device.Options{})
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := dev.Install(ctx, bin); err != nil {
		return err
	}
	var reports []*targets.BenchReport
	for _, m := range models {
		r, err := device.Bench(ctx, dev, m.Name, runs, "-threads", fmt.Sprint(lut.Threads))
		if err != nil {
			return err
		}
		reports = append(reports, r)
		fmt.Fprintf(os.Stderr, "%s: %.1f µs\n", m.Name, r.TotalUS())
	}
	var meas, plain, pred []float64
	for i, m := range models {
		keys, err := targets.ModelKeys(m)
		if err != nil {
			return err
		}
		sum, err := lut.Sum(keys)
		if err != nil {
			return err
		}
		pr, err := lut.Predict(keys)
		if err != nil {
			return err
		}
		meas = append(meas, reports[i].TotalUS())
		plain = append(plain, sum)
		pred = append(pred, pr)
	}
	newLUT, rep, err := targets.Calibrate(lut, reports, 0.5, seed)
	if err != nil {
		return err
	}
	fmt.Printf("%d random %s architectures on %s (%s kernels, %d thread(s), %s); table %s\n\n",
		n, sp.Name, lut.Target, lut.KernelSet, lut.Threads, lut.Machine.CPU, lut.ID())
	fmt.Printf("| predictor | networks | MAPE | RMSE µs |\n|---|---|---|---|\n")
	fmt.Printf("| table sum (all %d) | %d | %.2f%% | %.1f |\n", n, n, mape(plain, meas), rmse(plain, meas))
	fmt.Printf("| table + profile's correction (all %d) | %d | %.2f%% | %.1f |\n", n, n, mape(pred, meas), rmse(pred, meas))
	fmt.Printf("| before calibration, table sum (held out) | %d | %.2f%% | %.1f |\n", rep.BeforePlain.N, rep.BeforePlain.MAPE, rep.BeforePlain.RMSEUS)
	fmt.Printf("| before calibration, predictor (held out) | %d | %.2f%% | %.1f |\n", rep.BeforePredictor.N, rep.BeforePredictor.MAPE, rep.BeforePredictor.RMSEUS)
	fmt.Printf("| after calibration, table sum (held out) | %d | %.2f%% | %.1f |\n", rep.AfterPlain.N, rep.AfterPlain.MAPE, rep.AfterPlain.RMSEUS)
	fmt.Printf("| after calibration, predictor (held out) | %d | %.2f%% | %.1f |\n", rep.AfterPredictor.N, rep.AfterPredictor.MAPE, rep.AfterPredictor.RMSEUS)
	sorted := append([]float64(nil), meas...)
	sort.Float64s(sorted)
	fmt.Printf("\nmeasured latency: %.1f–%.1f µs (median %.1f); calibrated table %s\n", sorted[0], sorted[len(sorted)-1], sorted[len(sorted)/2], newLUT.ID())
	return newLUT.Save(filepath.Join(work, "lut-calibrated.json"))
}

func mape(p, m []float64) float64 {
	var s float64
	for i := range p {
		s += math.Abs(p[i]-m[i]) / m[i]
	}
	return 100 * s / float64(len(p))
}

func rmse(p, m []float64) float64 {
	var s float64
	for i := range p {
		s += (p[i] - m[i]) * (p[i] - m[i])
	}
	return math.Sqrt(s / float64(len(p)))
}
