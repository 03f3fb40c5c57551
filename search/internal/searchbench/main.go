package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/pnasml/pnas/runtime/kernels"
	"github.com/pnasml/pnas/search"
	"github.com/pnasml/pnas/search/internal/pnasbe"
	"github.com/pnasml/pnas/search/space"
)

func main() {
	spaceName := flag.String("space", "fmnist", "built-in search space")
	what := flag.String("what", "weight", "weight, arch, allweight or epoch (a warm-up epoch of pnas search on -data)")
	gate := flag.String("gate", search.GateFullV2, "gate mode for -what arch")
	k := flag.Int("k", 7, "number of candidates (first k of the default list)")
	batch := flag.Int("batch", 64, "batch size")
	steps := flag.Int("steps", 10, "timed steps")
	warm := flag.Int("warm", 2, "untimed steps first")
	par := flag.Int("parallelism", 0, "Config.Parallelism: 0 concurrent ops on all cores, N > 0 ops one at a time with N workers")
	head := flag.Float64("headroom", 0, "Config.MemoryHeadroom: memory limit per graph as a multiple of its planned working set (0: default, < 0: none)")
	jsonOut := flag.Bool("json", false, "print one JSON line (median step time, CPU-seconds per step, cores used, peak RSS) instead of text")
	opprof := flag.Bool("opprofile", false, "print the time per op and shape of the pnas backend")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the timed steps")
	backend := flag.String("backend", "", "Config.Backend: \"\" (pnas, the default), go, go:ops_sequential, ...")
	repeat := flag.Int("repeat", 1, "run the same steps this many times (fresh searcher, same seed); report the per-step minimum too")
	dataSpec := flag.String("data", "fashion-mnist", "data set of -what epoch (as pnas search --data)")
	epochSteps := flag.Int("epoch-steps", 0, "-what epoch: stop after this many steps (0: the whole epoch)")
	flag.Parse()
	if *what == "epoch" {
		if *opprof {
			defer pnasbe.WriteProfile(os.Stdout, 40)
		}
		if err := epoch(*spaceName, *dataSpec, *backend, *k, *batch, *par, *epochSteps, *prof, *jsonOut); err != nil {
			fmt.Fprintln(os.Stderr, "searchbench:", err)
			os.Exit(1)
		}
		return
	}
	if *opprof {
		pnasbe.EnableProfile(true)
		defer pnasbe.WriteProfile(os.Stdout, 40)
	}
	if err := run(*spaceName, *what, *gate, *backend, *k, *batch, *steps, *warm, *par, *head, *repeat, *prof, *jsonOut); err != nil {
		fmt.Fprintln(os.Stderr, "searchbench:", err)
		os.Exit(1)

	}
}

func run(spaceName, what, gate, backend string, k, batch, steps, warm, par int, head float64, repeat int, prof string, jsonOut bool) error {
	sp, err := space.Builtin(spaceName)
	if err != nil {
		return err
	}
	if repeat < 1 || steps < 1 {
		return fmt.Errorf("-steps and -repeat: expected >= 1, got %d and %d", steps, repeat)
	}
	if k < 1 || k > len(space.DefaultCandidates) {
		return fmt.Errorf("-k: expected 1..%d, got %d", len(space.DefaultCandidates), k)
	}
	sp.Candidates = space.DefaultCandidates[:k]
	if k == 1 {
		sp.Candidates = []string{"k3e6"}
	}
	plan, err := sp.Plan()
	if err != nil {
		return err
	}
	cfg := search.DefaultConfig()
	cfg.BatchSize, cfg.ArchBatchSize = batch, batch
	cfg.Parallelism = par
	cfg.MemoryHeadroom = head
	cfg.Backend = backend
	cfg.LatencyLoss = search.LossMulLog
	tab := search.MACTable(plan, 1000)
	m, err := search.NewLatencyModel(plan, tab)
	if err != nil {
		return err
	}
	cfg.TargetLatency = m.Fixed * 1.5
	switch what {
	case "arch":
		cfg.GateMode = gate
	case "allweight":
		cfg.GateMode = search.GateAll
	case "weight":
	default:
		return fmt.Errorf("-what: expected weight, arch or allweight, got %q", what)
	}
	in := plan.Stem.In
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, batch*in.C*in.H*in.W)
	y := make([]int, batch)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for i := range y {
		y[i] = rng.IntN(plan.Classes)
	}
	stop, err := startCPUProfile(prof)
	if err != nil {
		return err
	}
	defer stop()
	// Every repetition runs the same steps (same seed, so the same paths);
	// the per-step minimum over repetitions filters out other load on a
	// shared machine.
	best := make([]float64, steps)
	bestCPU := make([]float64, steps)
	var pathT, recT, wall, cpu float64
	var all []float64
	for r := 0; r < repeat; r++ {
		s, err := search.New(plan, cfg, tab)
		if err != nil {
			return err
		}
		s.ManageProcessMemory() // as the pnas command does (simplego only)
		step := func() (time.Duration, time.Duration, error) {
			if what == "arch" {
				st, err := s.ArchStep(x, y)
				return st.PathTime, st.RecomputeTime, err
			}
			_, err := s.WeightStep(x, y, 0.01, false)
			return 0, 0, err
		}
		// An architecture step follows weight steps in a search: one
		// first sets the memory budget (see search.Config.MemoryHeadroom).
		if what == "arch" {
			if _, err := s.WeightStep(x, y, 0.01, false); err != nil {
				return err
			}
		}
		for i := 0; i < warm; i++ {
			if _, _, err := step(); err != nil {
				return err
			}
		}
		for i := 0; i < steps; i++ {
			c0 := cpuSeconds()
			t0 := time.Now()
			p, rc, err := step()
			if err != nil {
				return err
			}
			dt, dc := time.Since(t0).Seconds(), cpuSeconds()-c0
			wall += dt
			all = append(all, dt)
			cpu += dc
			pathT += p.Seconds()
			recT += rc.Seconds()
			if r == 0 || dt < best[i] {
				best[i] = dt
			}
			if r == 0 || dc < bestCPU[i] {
				bestCPU[i] = dc
			}
		}
		s.Close()
	}
	n := float64(steps * repeat)
	var sumBest, sumBestCPU float64
	for i := range best {
		sumBest += best[i]
		sumBestCPU += bestCPU[i]
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	slices.Sort(all)
	median := all[len(all)/2]
	if len(all)%2 == 0 {
		median = (all[len(all)/2-1] + all[len(all)/2]) / 2
	}
	if jsonOut {
		fmt.Printf("{\"median_s\": %.6f, \"cpu_s\": %.6f, \"cores\": %.3f, \"rss_mib\": %.1f, \"kernels\": %q}\n",
			median, cpu/n, cpu/wall, float64(ru.Maxrss)/1024, kernels.KernelSet())
		return nil
	}
	fmt.Printf("step median %.3f s\n", median)
	fmt.Printf("backend=%q space=%s what=%s gate=%s k=%d batch=%d steps=%d repeat=%d\n", backend, spaceName, what, cfg.GateMode, k, batch, steps, repeat)
	fmt.Printf("step mean %.3f s (%.1f images/s), %.2f cpu-s, %.2f cores; per-step minimum over repetitions: mean %.3f s (%.1f images/s), %.2f cpu-s\n",
		wall/n, float64(batch)*n/wall, cpu/n, cpu/wall, sumBest/float64(steps), float64(batch*steps)/sumBest, sumBestCPU/float64(steps))
	if what == "arch" {
		fmt.Printf("mean per step: path forward+backward %.3f s, recomputing other candidates %.3f s\n", pathT/n, recT/n)
	}
	fmt.Printf("peak RSS %.0f MiB\n", float64(ru.Maxrss)/1024)
	return nil
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return tv(ru.Utime) + tv(ru.Stime)
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// startCPUProfile starts a CPU profile into path ("" = none); stop ends it.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
